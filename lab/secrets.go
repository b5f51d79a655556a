package lab

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"golang.org/x/crypto/ssh"
)

// ensureSecret creates a random secret file once (0600) and keeps it.
func ensureSecret(path string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("secret: %w", err)
	}
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return fmt.Errorf("secret: %w", err)
	}
	return writeFileAtomic(path, []byte(hex.EncodeToString(b)+"\n"), 0o600)
}

// ensureClientKey creates the lab's ed25519 client key once and returns
// its public key in authorized_keys format.
func ensureClientKey(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		signer, err := ssh.ParsePrivateKey(b)
		if err != nil {
			return "", fmt.Errorf("parse lab ssh key %s: %w", path, err)
		}
		return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey()))), nil
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", fmt.Errorf("generate lab ssh key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "haplan-lab")
	if err != nil {
		return "", fmt.Errorf("encode lab ssh key: %w", err)
	}
	if err := writeFileAtomic(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return "", err
	}
	spub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("encode lab ssh public key: %w", err)
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(spub)))
	if err := writeFileAtomic(path+".pub", []byte(line+" haplan-lab\n"), 0o644); err != nil {
		return "", err
	}
	return line, nil
}

// knownHostsLine turns a host's ssh_host_ed25519_key.pub into a
// known_hosts line for its IP address.
func knownHostsLine(ip string, pubFile []byte) (string, error) {
	f := strings.Fields(string(pubFile))
	if len(f) < 2 {
		return "", fmt.Errorf("host key of %s: malformed public key %q", ip, strings.TrimSpace(string(pubFile)))
	}
	if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(f[0] + " " + f[1])); err != nil {
		return "", fmt.Errorf("host key of %s: %w", ip, err)
	}
	return ip + " " + f[0] + " " + f[1], nil
}
