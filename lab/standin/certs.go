package standin

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

// CertBundle is the system-ssl certificate: PEM cert, key and CA chain.
type CertBundle struct {
	Cert  []byte
	Key   []byte
	Chain []byte
}

// ErrNoCAChain reports a server-cert.pem without the ca.crt cluster-manager
// also needs; the node retries ("Can not launch agent right now").
var ErrNoCAChain = errors.New("server-cert.pem present but ca.crt missing")

const (
	certValidity = 1080 * 24 * time.Hour
	certBackdate = 5 * time.Minute
	rsaBits      = 2048
)

// GenerateSelfSigned makes the cluster-manager style self-signed CA
// (organisation "cattle", RSA 2048, 1080 days, notBefore 5 minutes early)
// and a server certificate whose SANs are localhost, rancher and u.Host of
// the Host Registration URL as it is: with its port when it has one and
// IPv6 brackets, as a DNS name; an IP SAN too only when u.Host parses as
// an IP (cluster-manager v0.1.4 service/cluster_service.go hostnames,
// rancher/ssl.go generateCert2). So a URL with a port gets a certificate
// that verifies for no name a client would ask for.
func GenerateSelfSigned(hostRegistrationURL string, now time.Time) (CertBundle, error) {
	caKey, err := rsa.GenerateKey(rand.Reader, rsaBits)
	if err != nil {
		return CertBundle{}, fmt.Errorf("generate CA key: %w", err)
	}
	notBefore := now.Add(-certBackdate)
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{Organization: []string{"cattle"}, CommonName: "cattle-ca"},
		NotBefore:             notBefore,
		NotAfter:              notBefore.Add(certValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return CertBundle{}, fmt.Errorf("create CA: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return CertBundle{}, fmt.Errorf("parse CA: %w", err)
	}

	key, err := rsa.GenerateKey(rand.Reader, rsaBits)
	if err != nil {
		return CertBundle{}, fmt.Errorf("generate server key: %w", err)
	}
	var host string
	if u, err := url.Parse(hostRegistrationURL); err == nil {
		host = u.Host
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{Organization: []string{"cattle"}, CommonName: cmp.Or(host, "rancher")},
		NotBefore:    notBefore,
		NotAfter:     notBefore.Add(certValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost", "rancher"},
	}
	if host != "" {
		tmpl.DNSNames = append(tmpl.DNSNames, host)
		if ip := net.ParseIP(host); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return CertBundle{}, fmt.Errorf("create server certificate: %w", err)
	}
	return CertBundle{
		Cert:  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		Key:   pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}),
		Chain: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
	}, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return big.NewInt(time.Now().UnixNano())
	}
	return n
}

// LoadProvidedCerts reads server-cert.pem, server-key.pem and ca.crt from
// sslDir. ok is false when no server-cert.pem exists (self-signed mode).
func LoadProvidedCerts(sslDir string) (b CertBundle, ok bool, err error) {
	cert, err := os.ReadFile(filepath.Join(sslDir, "server-cert.pem"))
	if errors.Is(err, os.ErrNotExist) {
		return CertBundle{}, false, nil
	}
	if err != nil {
		return CertBundle{}, false, fmt.Errorf("read server-cert.pem: %w", err)
	}
	key, err := os.ReadFile(filepath.Join(sslDir, "server-key.pem"))
	if err != nil {
		return CertBundle{}, false, fmt.Errorf("read server-key.pem: %w", err)
	}
	chain, err := os.ReadFile(filepath.Join(sslDir, "ca.crt"))
	if errors.Is(err, os.ErrNotExist) {
		return CertBundle{}, false, ErrNoCAChain
	}
	if err != nil {
		return CertBundle{}, false, fmt.Errorf("read ca.crt: %w", err)
	}
	b = CertBundle{Cert: cert, Key: key, Chain: chain}
	if _, err := b.TLS(); err != nil {
		return CertBundle{}, false, err
	}
	return b, true, nil
}

// TLS returns the key pair for the HTTPS listener.
func (b CertBundle) TLS() (tls.Certificate, error) {
	c, err := tls.X509KeyPair(b.Cert, b.Key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("load server certificate: %w", err)
	}
	return c, nil
}

// WriteCAFile writes chain to path with mode 0644, as every node does with
// /var/lib/rancher/etc/ssl/ca.crt. If the file exists and does not already
// hold the chain, the chain is appended.
func WriteCAFile(path string, chain []byte) error {
	cur, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.WriteFile(path, chain, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		if err := os.Chmod(path, 0o644); err != nil {
			return fmt.Errorf("chmod %s: %w", path, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("read %s: %w", path, err)
	case bytes.Contains(cur, bytes.TrimSpace(chain)):
		return nil
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("append %s: %w", path, err)
	}
	if len(cur) > 0 && cur[len(cur)-1] != '\n' {
		chain = append([]byte("\n"), chain...)
	}
	if _, err := f.Write(chain); err != nil {
		f.Close()
		return fmt.Errorf("append %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("append %s: %w", path, err)
	}
	return nil
}
