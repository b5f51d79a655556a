package transport

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// startAgent serves an in-process ssh-agent holding one fresh key on a
// socket in a temporary directory, exports it as SSH_AUTH_SOCK and points
// HOME at an empty directory so no real key of the machine is offered.
func startAgent(t *testing.T) (pub ed25519.PublicKey, priv ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	kr := agent.NewKeyring()
	if err := kr.Add(agent.AddedKey{PrivateKey: priv}); err != nil {
		t.Fatal(err)
	}
	// Unix socket paths are limited to ~108 bytes; t.TempDir can be long.
	sock := filepath.Join(t.TempDir(), "a.sock")
	if len(sock) > 100 {
		t.Fatalf("socket path too long: %s", sock)
	}
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = agent.ServeAgent(kr, c)
			}()
		}
	}()
	t.Setenv("SSH_AUTH_SOCK", sock)
	t.Setenv("HOME", t.TempDir())
	return pub, priv
}

func TestAuthAgentWhenNoIdentityFile(t *testing.T) {
	_, priv := startAgent(t)
	agentSigner := mustSigner(t, priv)
	srv := startServer(t, agentSigner.PublicKey())
	h, p := srv.hostPort(t)
	cfg := Config{Host: "h1", Address: h, Port: p, User: "tester",
		KnownHostsFile: srv.knownHosts(t, srv.hostKey.PublicKey(), false)}

	pool := newTestPool(t, PoolOptions{Retries: -1})
	c, err := pool.Client(context.Background(), cfg)
	if err != nil {
		t.Fatalf("agent key not offered: %v", err)
	}
	if _, err := c.Run(context.Background(), Cmd{Line: "true"}); err != nil {
		t.Fatal(err)
	}
}

// With an identity file only that key is offered (IdentitiesOnly), even
// though the agent holds the key the server accepts.
func TestAuthIdentityFileIsTheOnlyKey(t *testing.T) {
	_, priv := startAgent(t)
	srv := startServer(t, mustSigner(t, priv).PublicKey())
	_, otherKey := newKey(t)
	h, p := srv.hostPort(t)
	cfg := Config{Host: "h1", Address: h, Port: p, User: "tester", IdentityFile: otherKey,
		KnownHostsFile: srv.knownHosts(t, srv.hostKey.PublicKey(), false)}

	pool := newTestPool(t, PoolOptions{Retries: -1})
	_, err := pool.Client(context.Background(), cfg)
	var ae *AuthError
	if !errors.As(err, &ae) {
		t.Fatalf("err = %v, want *AuthError (the agent's key must not be offered)", err)
	}
}

func TestAuthNoCredentials(t *testing.T) {
	t.Setenv("SSH_AUTH_SOCK", "")
	t.Setenv("HOME", t.TempDir())
	_, _, err := authMethods(Config{Host: "h1"})
	if err == nil || !strings.Contains(err.Error(), "no SSH credentials") {
		t.Errorf("err = %v, want the no-credentials hint", err)
	}
}

func mustSigner(t *testing.T, priv ed25519.PrivateKey) ssh.Signer {
	t.Helper()
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
