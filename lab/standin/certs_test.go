package standin

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var testNow = time.Date(2016, 5, 1, 12, 0, 0, 0, time.UTC)

// cluster-manager v0.1.4 service/cluster_service.go takes u.Host of the
// registration URL, port included; rancher/ssl.go adds each name as a DNS
// SAN and as an IP SAN only when net.ParseIP accepts it. With a port in the
// URL the certificate verifies for no name a client asks for.
func TestGenerateSelfSigned(t *testing.T) {
	tests := []struct {
		url, verifyName string
		wantDNS         []string
		wantIPs         int
		wantVerify      bool
	}{
		{"https://rancher.example.com", "rancher.example.com", []string{"localhost", "rancher", "rancher.example.com"}, 0, true},
		{"https://10.213.0.10", "10.213.0.10", []string{"localhost", "rancher", "10.213.0.10"}, 1, true},
		{"https://10.213.0.10:8443", "10.213.0.10", []string{"localhost", "rancher", "10.213.0.10:8443"}, 0, false},
		{"https://rancher.example.com:8443", "rancher.example.com", []string{"localhost", "rancher", "rancher.example.com:8443"}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			b, err := GenerateSelfSigned(tt.url, testNow)
			if err != nil {
				t.Fatal(err)
			}
			ca := parseCert(t, b.Chain)
			leaf := parseCert(t, b.Cert)
			if !ca.IsCA || ca.Subject.Organization[0] != "cattle" || !ca.NotBefore.Equal(testNow.Add(-5*time.Minute)) ||
				ca.NotAfter.Sub(ca.NotBefore) != 1080*24*time.Hour {
				t.Errorf("CA = org %v, notBefore %v, notAfter %v", ca.Subject.Organization, ca.NotBefore, ca.NotAfter)
			}
			if diff := cmp.Diff(tt.wantDNS, leaf.DNSNames); diff != "" || len(leaf.IPAddresses) != tt.wantIPs {
				t.Errorf("SANs %v %v", leaf.DNSNames, leaf.IPAddresses)
			}
			pool := x509.NewCertPool()
			pool.AddCert(ca)
			if _, err := leaf.Verify(x509.VerifyOptions{DNSName: tt.verifyName, Roots: pool, CurrentTime: testNow}); (err == nil) != tt.wantVerify {
				t.Errorf("verify for %s: %v, want success %t", tt.verifyName, err, tt.wantVerify)
			}
			if _, err := b.TLS(); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestLoadProvidedCerts(t *testing.T) {
	b, err := GenerateSelfSigned("https://lb", testNow)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, ok, err := LoadProvidedCerts(dir); ok || err != nil {
		t.Errorf("empty dir: ok=%t err=%v", ok, err)
	}
	write(t, filepath.Join(dir, "server-cert.pem"), b.Cert)
	write(t, filepath.Join(dir, "server-key.pem"), b.Key)
	if _, _, err := LoadProvidedCerts(dir); !errors.Is(err, ErrNoCAChain) {
		t.Errorf("without ca.crt: err=%v, want ErrNoCAChain", err)
	}
	write(t, filepath.Join(dir, "ca.crt"), b.Chain)
	got, ok, err := LoadProvidedCerts(dir)
	if !ok || err != nil || string(got.Chain) != string(b.Chain) {
		t.Errorf("complete: ok=%t err=%v", ok, err)
	}
}

func TestWriteCAFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ca.crt")
	if err := WriteCAFile(path, []byte("CA1\n")); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("mode = %v, %v", st.Mode().Perm(), err)
	}
	for _, chain := range []string{"CA1\n", "CA2\n", "CA2\n"} {
		if err := WriteCAFile(path, []byte(chain)); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := os.ReadFile(path)
	if string(got) != "CA1\nCA2\n" {
		t.Errorf("ca.crt = %q, want CA1 then CA2 once", got)
	}
}

func parseCert(t *testing.T, p []byte) *x509.Certificate {
	t.Helper()
	blk, _ := pem.Decode(p)
	if blk == nil {
		t.Fatal("no PEM block")
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func write(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
