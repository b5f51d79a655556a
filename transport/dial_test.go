package transport

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/ssh"
)

func writeTestFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func TestHostKeyVerification(t *testing.T) {
	other, _ := newKey(t)
	tests := []struct {
		name        string
		setup       func(t *testing.T, f *fixture)
		wantUnknown bool
		wantErr     bool
	}{
		{name: "known plain entry", setup: func(*testing.T, *fixture) {}},
		{name: "known hashed entry", setup: func(t *testing.T, f *fixture) {
			f.cfg.KnownHostsFile = f.srv.knownHosts(t, f.srv.hostKey.PublicKey(), true)
		}},
		{name: "unknown under strict", wantErr: true, wantUnknown: true, setup: func(t *testing.T, f *fixture) {
			f.cfg.KnownHostsFile = filepath.Join(t.TempDir(), "known_hosts")
			writeTestFile(t, f.cfg.KnownHostsFile, "", 0o600)
		}},
		{name: "missing known_hosts file is unknown", wantErr: true, wantUnknown: true, setup: func(t *testing.T, f *fixture) {
			f.cfg.KnownHostsFile = filepath.Join(t.TempDir(), "absent")
		}},
		{name: "mismatch", wantErr: true, setup: func(t *testing.T, f *fixture) {
			f.cfg.KnownHostsFile = f.srv.knownHosts(t, other.PublicKey(), false)
		}},
		{name: "mismatch under accept-new", wantErr: true, setup: func(t *testing.T, f *fixture) {
			f.cfg.KnownHostsFile = f.srv.knownHosts(t, other.PublicKey(), true)
			f.cfg.HostKeyPolicy = HostKeyAcceptNew
		}},
		{name: "pinned key wins over a wrong known_hosts", setup: func(t *testing.T, f *fixture) {
			f.cfg.KnownHostsFile = f.srv.knownHosts(t, other.PublicKey(), false)
			f.cfg.HostKey = string(ssh.MarshalAuthorizedKey(f.srv.hostKey.PublicKey()))
		}},
		{name: "pinned key mismatch wins over a right known_hosts", wantErr: true, setup: func(t *testing.T, f *fixture) {
			f.cfg.HostKey = string(ssh.MarshalAuthorizedKey(other.PublicKey()))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			tt.setup(t, &f)
			p := newTestPool(t, PoolOptions{Retries: 3})
			c, err := p.Client(context.Background(), f.cfg)
			if !tt.wantErr {
				if err != nil {
					t.Fatal(err)
				}
				if _, err := c.Run(context.Background(), Cmd{Line: "true"}); err != nil {
					t.Fatal(err)
				}
				// The connection says which machine it reached.
				if got, want := HostKeyOf(ReadOnly(c)), ssh.FingerprintSHA256(f.srv.hostKey.PublicKey()); got != want {
					t.Errorf("HostKeyOf = %q, want the server's %q", got, want)
				}
				return
			}
			var hke *HostKeyError
			if !errors.As(err, &hke) {
				t.Fatalf("err = %v, want *HostKeyError", err)
			}
			if hke.Unknown != tt.wantUnknown {
				t.Errorf("Unknown = %v, want %v (%v)", hke.Unknown, tt.wantUnknown, err)
			}
			if want := ssh.FingerprintSHA256(f.srv.hostKey.PublicKey()); hke.Got != want {
				t.Errorf("Got = %s, want %s", hke.Got, want)
			}
			if tt.wantUnknown && !strings.Contains(err.Error(), f.cfg.KnownHostsFile) {
				t.Errorf("unknown-host error does not name the known_hosts file: %v", err)
			}
			if !tt.wantUnknown {
				if diff := cmp.Diff([]string{ssh.FingerprintSHA256(other.PublicKey())}, hke.Want); diff != "" {
					t.Errorf("Want (-want +got):\n%s", diff)
				}
			}
			if conns, _ := f.srv.counts(); conns != 1 {
				t.Errorf("server saw %d connections; host key errors must not be retried", conns)
			}
		})
	}
}

func TestAcceptNew(t *testing.T) {
	f := newFixture(t)
	f.cfg.KnownHostsFile = filepath.Join(t.TempDir(), "sub", "known_hosts")
	f.cfg.HostKeyPolicy = HostKeyAcceptNew
	p := newTestPool(t, PoolOptions{})
	if _, err := p.Client(context.Background(), f.cfg); err != nil {
		t.Fatalf("accept-new on an unknown host: %v", err)
	}
	b, err := os.ReadFile(f.cfg.KnownHostsFile)
	if err != nil {
		t.Fatal(err)
	}
	want := "[127.0.0.1]:" + strconv.Itoa(f.cfg.Port) + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(f.srv.hostKey.PublicKey())))
	if got := strings.TrimSpace(string(b)); got != want {
		t.Errorf("known_hosts = %q, want %q", got, want)
	}
	// The recorded key is now enforced strictly.
	f.cfg.HostKeyPolicy = HostKeyStrict
	p2 := newTestPool(t, PoolOptions{})
	if _, err := p2.Client(context.Background(), f.cfg); err != nil {
		t.Fatalf("strict after accept-new: %v", err)
	}
}

func TestAuthFailureNotRetried(t *testing.T) {
	f := newFixture(t)
	_, wrongKey := newKey(t)
	f.cfg.IdentityFile = wrongKey
	p := newTestPool(t, PoolOptions{Retries: 3})
	_, err := p.Client(context.Background(), f.cfg)
	var ae *AuthError
	if !errors.As(err, &ae) {
		t.Fatalf("err = %v, want *AuthError", err)
	}
	if ae.Host != "h1" || ae.User != "tester" {
		t.Errorf("AuthError host/user = %q/%q", ae.Host, ae.User)
	}
	if conns, _ := f.srv.counts(); conns != 1 {
		t.Errorf("server saw %d connections; auth errors must not be retried", conns)
	}
}

func TestConnectRefusedRetried(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	_, keyFile := newKey(t)
	cfg := Config{Host: "gone", Address: "127.0.0.1", Port: port, IdentityFile: keyFile,
		KnownHostsFile: filepath.Join(t.TempDir(), "known_hosts")}
	p := newTestPool(t, PoolOptions{Retries: 2})
	_, err = p.Client(context.Background(), cfg)
	var ce *ConnectError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want *ConnectError", err)
	}
	if ce.Attempts != 3 || ce.Host != "gone" {
		t.Errorf("ConnectError = %+v, want 3 attempts for host gone", ce)
	}
	// Once: the same failure, asked once.
	cfg.Once = true
	_, err = p.Client(context.Background(), cfg)
	if !errors.As(err, &ce) || ce.Attempts != 1 {
		t.Errorf("with Once: %v, want a ConnectError after 1 attempt", err)
	}
}

func TestConnectCancelledDuringBackoff(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	_, keyFile := newKey(t)
	cfg := Config{Host: "gone", Address: "127.0.0.1", Port: port, IdentityFile: keyFile,
		KnownHostsFile: filepath.Join(t.TempDir(), "known_hosts")}
	// A back-off far longer than any test: only ctx can end it.
	p := newTestPool(t, PoolOptions{Retries: 5, Backoff: 1 << 40})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := p.Client(ctx, cfg)
		done <- err
	}()
	cancel()
	err = <-done
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestBastion(t *testing.T) {
	target := newFixture(t)
	jump := newFixture(t)
	jump.cfg.Host = "jump"
	cfg := target.cfg
	cfg.Bastion = &jump.cfg
	p := newTestPool(t, PoolOptions{})
	c, err := p.Client(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Run(context.Background(), Cmd{Line: "echo via-jump"})
	if err != nil || string(got.Stdout) != "via-jump\n" {
		t.Fatalf("Run via bastion = %q, %v", got.Stdout, err)
	}
	if conns, _ := jump.srv.counts(); conns != 1 {
		t.Errorf("bastion saw %d connections, want 1", conns)
	}
	jump.srv.mu.Lock()
	forwards := jump.srv.forwards
	jump.srv.mu.Unlock()
	if forwards != 1 {
		t.Errorf("bastion forwarded %d connections, want 1", forwards)
	}
	// The target's one connection came through the bastion's forward.
	if conns, _ := target.srv.counts(); conns != 1 {
		t.Errorf("target saw %d connections, want 1", conns)
	}
}

func TestKnownKeyOfOtherType(t *testing.T) {
	f := newFixture(t)
	// known_hosts holds only an ECDSA entry: the ed25519-only server
	// cannot present a key we could check, which is a mismatch.
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ssh.NewPublicKey(&ek.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	f.cfg.KnownHostsFile = f.srv.knownHosts(t, pub, false)
	p := newTestPool(t, PoolOptions{})
	_, err = p.Client(context.Background(), f.cfg)
	var hke *HostKeyError
	if !errors.As(err, &hke) || hke.Unknown {
		t.Fatalf("err = %v, want a *HostKeyError mismatch", err)
	}
	if diff := cmp.Diff([]string{ssh.FingerprintSHA256(pub)}, hke.Want); diff != "" {
		t.Errorf("Want (-want +got):\n%s", diff)
	}
	if conns, _ := f.srv.counts(); conns != 1 {
		t.Errorf("server saw %d connections; must not retry", conns)
	}
}

// A host behind a bastion that accepts TCP and never speaks SSH: the
// handshake runs over a channel of the bastion's connection, which has no
// deadlines, yet it fails within the connect timeout, naming the host.
func TestBastionTargetThatNeverSpeaks(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c) // accepted, silent
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	})
	jump := newFixture(t)
	jump.cfg.Host = "jump"
	_, keyFile := newKey(t)
	cfg := Config{Host: "silent", Address: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port, IdentityFile: keyFile,
		KnownHostsFile: filepath.Join(t.TempDir(), "known_hosts"), ConnectTimeout: 300 * time.Millisecond, Bastion: &jump.cfg}
	p := newTestPool(t, PoolOptions{Retries: -1})
	start := time.Now()
	_, err = p.Client(context.Background(), cfg)
	var ce *ConnectError
	if !errors.As(err, &ce) || ce.Host != "silent" || !strings.Contains(err.Error(), "no answer within 300ms") {
		t.Fatalf("connect to a silent host behind a bastion = %v, want a ConnectError naming it and the limit", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s", d)
	}
}

// A port that answers in another protocol (a web server, a database) is
// "not an SSH server", naming what it said, and is not retried; one that
// takes the connection and says nothing is a timeout that asks whether it
// is an SSH server at all.
func TestNotAnSSHServer(t *testing.T) {
	listen := func(greeting string) (int, *atomic.Int32) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		var conns atomic.Int32
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				conns.Add(1)
				if greeting != "" {
					c.Write([]byte(greeting))
					c.Close()
				} else {
					t.Cleanup(func() { c.Close() })
				}
			}
		}()
		return ln.Addr().(*net.TCPAddr).Port, &conns
	}
	_, keyFile := newKey(t)
	port, conns := listen("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
	cfg := Config{Host: "web", Address: "127.0.0.1", Port: port, IdentityFile: keyFile,
		KnownHostsFile: filepath.Join(t.TempDir(), "known_hosts"), ConnectTimeout: 2 * time.Second}
	p := newTestPool(t, PoolOptions{Retries: 2})
	_, err := p.Client(context.Background(), cfg)
	var ns *NotSSHError
	if !errors.As(err, &ns) || !strings.Contains(err.Error(), `127.0.0.1:`+strconv.Itoa(port)+` is not an SSH server: it answered "HTTP/1.1 400 Bad Request`) {
		t.Fatalf("err = %v, want *NotSSHError naming the answer", err)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections: a server of another protocol must not be retried", n)
	}
	port, _ = listen("")
	cfg.Port, cfg.Host, cfg.ConnectTimeout = port, "silent", 500*time.Millisecond
	_, err = newTestPool(t, PoolOptions{}).Client(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "the port takes connections but says nothing: is it an SSH server?") {
		t.Fatalf("err = %v", err)
	}
}
