package manifests

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// testHome is the home directory the tests' loaders resolve "~" in: it
// holds a real ~/.ssh/id_ed25519 and an empty ~/.ssh/known_hosts, as an
// operator's does, so that validation finds what it checks.
var testHome string

// testTLS is a real certificate for rancher.example.com (the examples'
// registration URL), its key and the CA chain that signed it.
var testTLS struct{ cert, key, chain string }

// TestMain makes the test corpus's secret files private, as a user keeps
// theirs (git records no modes but the executable bit, so a clone has them
// 0644, which validation warns about), and builds testHome and testTLS.
func TestMain(m *testing.M) {
	code, err := setUp(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 2
	}
	if testHome != "" {
		os.RemoveAll(testHome)
	}
	os.Exit(code)
}

func setUp(m *testing.M) (int, error) {
	files, _ := filepath.Glob("testdata/*/secrets/*")
	keys, _ := filepath.Glob("testdata/*/tls/*key*")
	for _, f := range append(files, keys...) {
		if err := os.Chmod(f, 0o600); err != nil {
			return 0, err
		}
	}
	home, err := os.MkdirTemp("", "haplan-manifests-home")
	if err != nil {
		return 0, err
	}
	testHome = home
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return 0, err
	}
	blk, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		return 0, err
	}
	if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
		return 0, err
	}
	if err := os.WriteFile(filepath.Join(home, ".ssh", "id_ed25519"), pem.EncodeToMemory(blk), 0o600); err != nil {
		return 0, err
	}
	if err := os.WriteFile(filepath.Join(home, ".ssh", "known_hosts"), nil, 0o600); err != nil {
		return 0, err
	}
	if err := makeTestTLS("rancher.example.com"); err != nil {
		return 0, err
	}
	return m.Run(), nil
}

func makeTestTLS(host string) error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(10 * 365 * 24 * time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(5 * 365 * 24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	testTLS.cert = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}))
	testTLS.key = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	testTLS.chain = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}))
	return nil
}
