package resources

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/haplan/haplan/manifests"
	"github.com/haplan/haplan/transport"
)

const sshTestManifest = `name: t
ssh:
  knownHostsFile: kh
database:
  host: 10.0.0.20
  password: {env: HAPLAN_DB_PASSWORD}
  admin: {user: root, password: {env: HAPLAN_DB_PASSWORD}}
loadBalancer:
  address: 10.0.0.10
  haproxy: {ssh: {user: lbadmin}}
nodes:
  - {name: rs1, address: rs1.alias}
  - {name: rs2, address: 10.0.0.12, ssh: {user: root, port: 22, identityFile: keys/rs2}}
  - {name: rs3, address: 10.0.0.13, ssh: {bastion: "ops@jump:2022"}}
hosts:
  - {name: h1, address: 10.0.1.1}
`

const sshTestConfig = `Host rs1.alias
  HostName 10.0.0.11
  User admin
  Port 2222
  IdentityFile ~/.ssh/rs1_%r
Host jump
  HostName 192.0.2.1
  User jumper
  IdentityFile ~/.ssh/jump
Host 10.0.1.*
  ProxyJump jump,inner:2201
Host *
  User deploy
  Port 2200
  IdentityFile ~/.ssh/fleet
`

// sshTestEnv loads sshTestManifest and builds an Env reading the given
// ssh_config files, with HOME in a temporary directory.
func sshTestEnv(t *testing.T, configFiles []string) (*Env, string, string) {
	t.Helper()
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("HAPLAN_DB_PASSWORD", "pw")
	dir := t.TempDir()
	c, ds := manifests.Loader{HomeDir: home}.LoadBytes("cluster.yaml", []byte(sshTestManifest), dir)
	if ds.HasErrors() {
		t.Fatalf("manifest: %v", ds)
	}
	e, err := NewEnv(c, Options{SSHConfigFiles: configFiles})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e, home, dir
}

func TestSSHConfigPrecedence(t *testing.T) {
	cfgDir := t.TempDir()
	cfgFile := filepath.Join(cfgDir, "config")
	if err := os.WriteFile(cfgFile, []byte(sshTestConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	e, home, dir := sshTestEnv(t, []string{cfgFile})
	kh := filepath.Join(dir, "kh")
	key := func(name string) string { return filepath.Join(home, ".ssh", name) }
	timeout := manifests.DefaultSSHTimeout
	base := func(host, addr, user string, port int, id string) transport.Config {
		return transport.Config{Host: host, Address: addr, User: user, Port: port, IdentityFile: id,
			KnownHostsFile: kh, HostKeyPolicy: "strict", ConnectTimeout: timeout, Sudo: user != "root"}
	}
	jump := transport.Config{Host: "bastion jump", Address: "192.0.2.1", User: "jumper", Port: 2200,
		IdentityFile: key("jump"), KnownHostsFile: kh, HostKeyPolicy: "strict", ConnectTimeout: timeout}
	rs3 := base("rs3", "10.0.0.13", "deploy", 2200, key("fleet"))
	rs3jump := jump
	rs3jump.User, rs3jump.Port = "ops", 2022 // written in the bastion string
	rs3.Bastion = &rs3jump
	h1 := base("h1", "10.0.1.1", "deploy", 2200, key("fleet"))
	h1.Bastion = &transport.Config{Host: "bastion inner", Address: "inner", User: "deploy", Port: 2201,
		IdentityFile: key("fleet"), KnownHostsFile: kh, HostKeyPolicy: "strict", ConnectTimeout: timeout,
		Bastion: &jump}

	for _, tc := range []struct {
		name string
		t    target
		want transport.Config
	}{
		{"alias: HostName, User, Port and IdentityFile with %r from ssh config",
			nodeTarget(e.c.Nodes[0]), base("rs1", "10.0.0.11", "admin", 2222, key("rs1_admin"))},
		{"the manifest's explicit user, port and identityFile win over Host *",
			nodeTarget(e.c.Nodes[1]), base("rs2", "10.0.0.12", "root", 22, filepath.Join(dir, "keys/rs2"))},
		{"manifest bastion resolved through ssh config, its own user and port win",
			nodeTarget(e.c.Nodes[2]), rs3},
		{"ProxyJump chain from ssh config, first hop outermost",
			hostTarget(e.c.Hosts[0]), h1},
		{"LB: explicit user, the rest from ssh config",
			e.lbTarget(), base("lb", "10.0.0.10", "lbadmin", 2200, key("fleet"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := e.sshConfig(tc.t)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("sshConfig(%s) (-want +got):\n%s", tc.t.name, diff)
			}
		})
	}
}

// Without any ssh_config the built-in defaults apply, and without an
// identityFile in the manifest none is passed on, so transport offers the
// agent's keys and then the default key files.
func TestSSHConfigNone(t *testing.T) {
	e, _, dir := sshTestEnv(t, []string{})
	got, err := e.sshConfig(nodeTarget(e.c.Nodes[0]))
	if err != nil {
		t.Fatal(err)
	}
	want := transport.Config{Host: "rs1", Address: "rs1.alias", User: "root", Port: 22,
		KnownHostsFile: filepath.Join(dir, "kh"), HostKeyPolicy: "strict", ConnectTimeout: manifests.DefaultSSHTimeout}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("sshConfig (-want +got):\n%s", diff)
	}
}

func TestSSHConfigErrors(t *testing.T) {
	cfgFile := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(cfgFile, []byte("Host *\n  Port twenty\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e, _, _ := sshTestEnv(t, []string{cfgFile})
	if _, err := e.sshConfig(nodeTarget(e.c.Nodes[0])); err == nil || !strings.Contains(err.Error(), `rs1: ssh config: `) {
		t.Errorf("bad Port: err = %v, want one naming the machine and the config", err)
	}

	bad := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(bad, []byte("Host\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HAPLAN_DB_PASSWORD", "pw")
	c, ds := manifests.Loader{HomeDir: t.TempDir()}.LoadBytes("cluster.yaml", []byte(sshTestManifest), t.TempDir())
	if ds.HasErrors() {
		t.Fatal(ds)
	}
	if _, err := NewEnv(c, Options{SSHConfigFiles: []string{bad}}); err == nil || !strings.Contains(err.Error(), "Host needs") {
		t.Errorf("unparsable ssh config: NewEnv err = %v", err)
	}

	for _, s := range []string{"user@:22", "host:0", "host:x"} {
		if _, _, _, err := parseBastion(s); err == nil {
			t.Errorf("parseBastion(%q): no error", s)
		}
	}
}
