package transport

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/haplan/haplan/internal/fileread"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// authMethods builds the client's credentials. With an IdentityFile only that
// key is offered (IdentitiesOnly): offering hundreds of agent keys trips the
// server's MaxAuthTries (k0sctl #422). Otherwise the agent's keys are offered,
// then the default key files. The returned cleanup closes the agent socket
// and must be called once the handshake is over.
func authMethods(c Config) ([]ssh.AuthMethod, func(), error) {
	noop := func() {}
	if c.IdentityFile != "" {
		s, err := loadKey(c.IdentityFile)
		if err != nil {
			return nil, noop, fmt.Errorf("%s: identity file: %w", c.Host, err)
		}
		return []ssh.AuthMethod{ssh.PublicKeys(s)}, noop, nil
	}
	var signers []ssh.Signer
	cleanup := noop
	if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" {
		if conn, err := net.Dial("unix", sock); err == nil {
			if ss, err := agent.NewClient(conn).Signers(); err == nil {
				signers = append(signers, ss...)
			}
			cleanup = func() { conn.Close() }
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		for _, name := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
			s, err := loadKey(filepath.Join(home, ".ssh", name))
			if err == nil {
				signers = append(signers, s)
			}
		}
	}
	if len(signers) == 0 {
		cleanup()
		return nil, noop, fmt.Errorf("%s: no SSH credentials: set an identity file, or load a key into ssh-agent ($SSH_AUTH_SOCK), or create ~/.ssh/id_ed25519", c.Host)
	}
	return []ssh.AuthMethod{ssh.PublicKeys(signers...)}, cleanup, nil
}

func loadKey(path string) (ssh.Signer, error) {
	b, err := fileread.Regular(path, 1<<20)
	if err != nil {
		return nil, err
	}
	s, err := ssh.ParsePrivateKey(b)
	var pm *ssh.PassphraseMissingError
	if errors.As(err, &pm) {
		return nil, fmt.Errorf("%s is passphrase-protected; load it into ssh-agent instead: %w", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	return s, nil
}
