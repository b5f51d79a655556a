package transport

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func writeConfigFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestSSHConfigLookup(t *testing.T) {
	const cfg = `# operators' config
Host rs1 rs1.prod
    HostName 10.0.0.11
    User admin
    Port 2222
    IdentityFile ~/.ssh/prod_%r_%h

Host 10.0.1.* !10.0.1.99
  User=deploy
  ProxyJump jump@bastion.example.com:2200

Host h?
  HostName %h.internal
  ProxyJump none

Host "quoted host"
  User quoted

Host *
  User fallback
  Port 22
  IdentityFile ~/.ssh/id_default
  ProxyJump never-used-when-earlier
  StrictHostKeyChecking no
`
	c, err := ParseSSHConfig("/home/op/.ssh/config", []byte(cfg), "/home/op")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, host string
		want       HostSettings
	}{
		{"alias with everything", "rs1", HostSettings{Host: "rs1", HostName: "10.0.0.11", User: "admin", Port: 2222,
			IdentityFiles: []string{"/home/op/.ssh/prod_%r_%h", "/home/op/.ssh/id_default"}, ProxyJump: "never-used-when-earlier"}},
		{"second pattern of a Host line, any case", "RS1.Prod", HostSettings{Host: "RS1.Prod", HostName: "10.0.0.11", User: "admin", Port: 2222,
			IdentityFiles: []string{"/home/op/.ssh/prod_%r_%h", "/home/op/.ssh/id_default"}, ProxyJump: "never-used-when-earlier"}},
		{"star pattern, key=value form", "10.0.1.7", HostSettings{Host: "10.0.1.7", User: "deploy", Port: 22,
			IdentityFiles: []string{"/home/op/.ssh/id_default"}, ProxyJump: "jump@bastion.example.com:2200"}},
		{"negated pattern excludes", "10.0.1.99", HostSettings{Host: "10.0.1.99", User: "fallback", Port: 22,
			IdentityFiles: []string{"/home/op/.ssh/id_default"}, ProxyJump: "never-used-when-earlier"}},
		{"question mark, %h in HostName, ProxyJump none wins", "h1", HostSettings{Host: "h1", HostName: "h1.internal", User: "fallback", Port: 22,
			IdentityFiles: []string{"/home/op/.ssh/id_default"}}},
		{"question mark is exactly one character", "h10", HostSettings{Host: "h10", User: "fallback", Port: 22,
			IdentityFiles: []string{"/home/op/.ssh/id_default"}, ProxyJump: "never-used-when-earlier"}},
		{"quoted pattern", "quoted host", HostSettings{Host: "quoted host", User: "quoted", Port: 22,
			IdentityFiles: []string{"/home/op/.ssh/id_default"}, ProxyJump: "never-used-when-earlier"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.Lookup(tc.host)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got, cmpopts.IgnoreUnexported(HostSettings{})); diff != "" {
				t.Errorf("Lookup(%q) (-want +got):\n%s", tc.host, diff)
			}
		})
	}
}

func TestSSHConfigIdentityFileTokens(t *testing.T) {
	c, err := ParseSSHConfig("cfg", []byte("Host rs1\n HostName 10.0.0.11\n IdentityFile %d/keys/%r@%h:%p-%n-%%\n"), "/home/op")
	if err != nil {
		t.Fatal(err)
	}
	hs, err := c.Lookup("rs1")
	if err != nil {
		t.Fatal(err)
	}
	got, err := hs.IdentityFile("admin", 2222)
	if err != nil {
		t.Fatal(err)
	}
	if want := "/home/op/keys/admin@10.0.0.11:2222-rs1-%"; got != want {
		t.Errorf("IdentityFile = %q, want %q", got, want)
	}

	bad, err := ParseSSHConfig("cfg", []byte("IdentityFile ~/.ssh/%C\n"), "/home/op")
	if err != nil {
		t.Fatal(err)
	}
	hs, err = bad.Lookup("x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hs.IdentityFile("root", 22); err == nil || !strings.Contains(err.Error(), "%C") {
		t.Errorf("unsupported token: err = %v, want one naming %%C", err)
	}
	none, _ := bad.Lookup("x")
	none.IdentityFiles = nil
	if got, err := none.IdentityFile("root", 22); got != "" || err != nil {
		t.Errorf("no IdentityFile: got %q, %v", got, err)
	}
}

func TestSSHConfigFilesIncludeAndOrder(t *testing.T) {
	home := t.TempDir()
	etc := t.TempDir()
	user := filepath.Join(home, ".ssh", "config")
	writeConfigFile(t, user, `Include config.d/*.conf
Host db*
  Include db.conf
Host *
  User from-user-file
`)
	writeConfigFile(t, filepath.Join(home, ".ssh", "config.d", "10-prod.conf"), `Host rs*
  User included
  Port 2201
`)
	writeConfigFile(t, filepath.Join(home, ".ssh", "db.conf"), "Port 3022\nHost never\nUser nope\n")
	system := filepath.Join(etc, "ssh_config")
	writeConfigFile(t, system, "Host *\n  User from-system\n  Port 2299\n  IdentityFile /etc/ssh/key\n")

	c, err := ReadSSHConfig(home, user, system, filepath.Join(etc, "missing"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		host string
		want HostSettings
	}{
		// An included file's settings apply; its Host lines do not end
		// the including block.
		{"rs2", HostSettings{Host: "rs2", User: "included", Port: 2201, IdentityFiles: []string{"/etc/ssh/key"}}},
		// An Include inside a matching Host block applies; a Host line in
		// it does not leak out ("Host never" has no effect on "Host *").
		{"db1", HostSettings{Host: "db1", User: "from-user-file", Port: 3022, IdentityFiles: []string{"/etc/ssh/key"}}},
		// The user's file wins over the system's, keyword by keyword.
		{"other", HostSettings{Host: "other", User: "from-user-file", Port: 2299, IdentityFiles: []string{"/etc/ssh/key"}}},
	} {
		got, err := c.Lookup(tc.host)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.want, got, cmpopts.IgnoreUnexported(HostSettings{})); diff != "" {
			t.Errorf("Lookup(%q) (-want +got):\n%s", tc.host, diff)
		}
	}
}

func TestSSHConfigMatchBlocksIgnored(t *testing.T) {
	c, err := ParseSSHConfig("cfg", []byte("Match host rs1 exec \"true\"\n  User from-match\nMatch all\n  Port 2022\nHost rs1\n  User from-host\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Lookup("rs1")
	if err != nil {
		t.Fatal(err)
	}
	if got.User != "from-host" || got.Port != 2022 {
		t.Errorf("Lookup = %+v, want User from-host (Match not evaluated) and Port 2022 (Match all)", got)
	}
}

func TestSSHConfigErrors(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"host without pattern", "Host\n", "cfg line 1: Host needs"},
		{"unterminated quote", "Host x\n  User \"bob\n", "cfg line 2: unterminated quote"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSSHConfig("cfg", []byte(tc.src), "")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
	c, err := ParseSSHConfig("cfg", []byte("Host *\n  Port ssh\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Lookup("x"); err == nil || !strings.Contains(err.Error(), `cfg line 2: bad Port "ssh"`) {
		t.Errorf("bad port: err = %v", err)
	}
	dir := t.TempDir()
	loop := filepath.Join(dir, "loop")
	writeConfigFile(t, loop, "Include loop\n")
	if _, err := ReadSSHConfig("", loop); err == nil || !strings.Contains(err.Error(), "nested deeper") {
		t.Errorf("include loop: err = %v", err)
	}
	unreadable := filepath.Join(dir, "dir.conf")
	if err := os.Mkdir(unreadable, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadSSHConfig("", unreadable); err == nil {
		t.Errorf("a directory as config: no error")
	}
}

func TestSSHConfigNilAndDefaults(t *testing.T) {
	var c *SSHConfig
	got, err := c.Lookup("rs1")
	if err != nil || got.Host != "rs1" || got.User != "" {
		t.Errorf("nil config Lookup = %+v, %v", got, err)
	}
	if diff := cmp.Diff([]string{"/h/.ssh/config", "/etc/ssh/ssh_config"}, DefaultSSHConfigFiles("/h")); diff != "" {
		t.Errorf("DefaultSSHConfigFiles (-want +got):\n%s", diff)
	}
}

func TestWildcardMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, s string
		want       bool
	}{
		{"*", "", true},
		{"*", "anything", true},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
		{"10.0.?.1", "10.0.5.1", true},
		{"10.0.?.1", "10.0.55.1", false},
		{"*.example.com", "example.com", false},
		{"rs[12]", "rs1", false}, // brackets are literal in ssh patterns
		{"rs[12]", "rs[12]", true},
		{"**a", "ba", true},
	} {
		if got := wildcardMatch(tc.pattern, tc.s); got != tc.want {
			t.Errorf("wildcardMatch(%q, %q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
}

func TestResolveKex(t *testing.T) {
	def := DefaultKex()
	tests := []struct {
		spec    string
		want    []string
		wantErr bool
	}{
		{spec: "ecdh-sha2-nistp256,curve25519-sha256", want: []string{"ecdh-sha2-nistp256", "curve25519-sha256"}},
		// OpenSSH-only and legacy names are left out.
		{spec: "sntrup761x25519-sha512@openssh.com,diffie-hellman-group1-sha1,curve25519-sha256", want: []string{"curve25519-sha256"}},
		{spec: "^ecdh-sha2-nistp256", want: append([]string{"ecdh-sha2-nistp256"}, slices.DeleteFunc(slices.Clone(def), func(s string) bool { return s == "ecdh-sha2-nistp256" })...)},
		{spec: "+curve25519-sha256", want: append(slices.DeleteFunc(slices.Clone(def), func(s string) bool { return s == "curve25519-sha256" }), "curve25519-sha256")},
		{spec: "-ecdh-sha2-*,diffie-hellman-*", want: []string{"mlkem768x25519-sha256", "curve25519-sha256"}},
		{spec: "diffie-hellman-group1-sha1", wantErr: true},
		{spec: "-*", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ResolveKex(tt.spec)
		if (err != nil) != tt.wantErr {
			t.Errorf("ResolveKex(%q) err = %v, wantErr %v", tt.spec, err, tt.wantErr)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ResolveKex(%q) (-want +got):\n%s", tt.spec, diff)
		}
	}
}

func TestSSHConfigKexAlgorithms(t *testing.T) {
	c := parseTestConfig(t, "Host fleet-*\n  KexAlgorithms ^ecdh-sha2-nistp256\nHost *\n  KexAlgorithms curve25519-sha256\n")
	hs, err := c.Lookup("fleet-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(hs.KexAlgorithms) != len(DefaultKex()) || hs.KexAlgorithms[0] != "ecdh-sha2-nistp256" {
		t.Errorf("fleet-1: KexAlgorithms = %v", hs.KexAlgorithms)
	}
	hs, err = c.Lookup("rs1")
	if err != nil || !slices.Equal(hs.KexAlgorithms, []string{"curve25519-sha256"}) {
		t.Errorf("rs1: KexAlgorithms = %v, %v", hs.KexAlgorithms, err)
	}
	bad := parseTestConfig(t, "KexAlgorithms diffie-hellman-group1-sha1\n")
	if _, err := bad.Lookup("x"); err == nil || !strings.Contains(err.Error(), "line 1: KexAlgorithms") {
		t.Errorf("an unusable KexAlgorithms: err = %v, want one naming the line", err)
	}
}

func parseTestConfig(t *testing.T, src string) *SSHConfig {
	t.Helper()
	c, err := ParseSSHConfig("config", []byte(src), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return c
}
