package lab

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/ssh"
)

func TestSaveLoadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	l := newLab(dir, Layout(Options{Nodes: 3, Hosts: 3}))
	l.HostImage = "haplan-lab/host:abc"
	if err := l.save(); err != nil {
		t.Fatal(err)
	}
	got, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(l, got); diff != "" {
		t.Errorf("Load (-want +got):\n%s", diff)
	}
	if got.IP("rs2") != "10.213.1.2" || got.IP("nope") != "" {
		t.Errorf("IP lookups wrong: rs2=%q nope=%q", got.IP("rs2"), got.IP("nope"))
	}
	if _, err := got.Host("nope"); !errors.Is(err, ErrUnknownHost) {
		t.Errorf("Host(nope) = %v, want ErrUnknownHost", err)
	}
	if n := len(got.ByRole(RoleNode)); n != 3 {
		t.Errorf("%d nodes, want 3", n)
	}
}

func TestLoadMissing(t *testing.T) {
	if _, err := Load(t.TempDir()); !errors.Is(err, ErrNotUp) {
		t.Errorf("Load(empty dir) = %v, want ErrNotUp", err)
	}
}

func TestSecretsCreatedOnceAndPrivate(t *testing.T) {
	dir := t.TempDir()
	l := newLab(dir, Layout(Options{Nodes: 1}))
	if err := ensureSecret(l.DB.AdminPasswordFile); err != nil {
		t.Fatal(err)
	}
	first, err := os.ReadFile(l.DB.AdminPasswordFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := ensureSecret(l.DB.AdminPasswordFile); err != nil {
		t.Fatal(err)
	}
	second, _ := os.ReadFile(l.DB.AdminPasswordFile)
	if string(first) != string(second) {
		t.Error("second ensureSecret replaced the secret")
	}
	st, _ := os.Stat(l.DB.AdminPasswordFile)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("secret mode %o, want 600", st.Mode().Perm())
	}
	dsn, err := l.AdminDSN()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(dsn, "root:"+strings.TrimSpace(string(first))+"@tcp(10.213.0.3:3306)/") {
		t.Errorf("DSN has the wrong shape")
	}
}

func TestClientKey(t *testing.T) {
	dir := t.TempDir()
	l := newLab(dir, nil)
	pub, err := ensureClientKey(l.SSH.IdentityFile)
	if err != nil {
		t.Fatal(err)
	}
	again, err := ensureClientKey(l.SSH.IdentityFile)
	if err != nil {
		t.Fatal(err)
	}
	if again != pub {
		t.Errorf("key changed between calls: %q vs %q", pub, again)
	}
	b, err := os.ReadFile(l.SSH.IdentityFile)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	if signer.PublicKey().Type() != ssh.KeyAlgoED25519 {
		t.Errorf("key type %s, want ed25519", signer.PublicKey().Type())
	}
	if st, _ := os.Stat(l.SSH.IdentityFile); st.Mode().Perm() != 0o600 {
		t.Errorf("key mode %o, want 600", st.Mode().Perm())
	}
}

func TestKnownHostsLine(t *testing.T) {
	const pub = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGPDyGMmH9Pq+Ks0sVbJj8CC1ulR0LOk2cCTuUsmh0yP root@rs1\n"
	got, err := knownHostsLine("10.213.1.1", []byte(pub))
	if err != nil {
		t.Fatal(err)
	}
	if want := "10.213.1.1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGPDyGMmH9Pq+Ks0sVbJj8CC1ulR0LOk2cCTuUsmh0yP"; got != want {
		t.Errorf("line = %q, want %q", got, want)
	}
	if _, err := knownHostsLine("10.213.1.1", []byte("garbage")); err == nil {
		t.Error("garbage host key accepted")
	}
}
