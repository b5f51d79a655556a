package resources

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/haplan/haplan/manifests"
	"github.com/haplan/haplan/plans"
)

func selfSigned(t *testing.T) ([]byte, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), der
}

// The fingerprint is the one openssl prints (x509 -noout -fingerprint, the
// SHA-1 default of the agent's run.sh) and cattle puts in CA_FINGERPRINT:
// upper-case hex pairs joined by colons.
func TestCAFingerprint(t *testing.T) {
	pemBytes, der := selfSigned(t)
	sum := sha1.Sum(der)
	var parts []string
	for _, b := range sum {
		parts = append(parts, fmt.Sprintf("%02X", b))
	}
	got, err := caFingerprint(pemBytes)
	if err != nil || got != strings.Join(parts, ":") {
		t.Errorf("caFingerprint = %q, %v; want %s", got, err, strings.Join(parts, ":"))
	}
	if _, err := caFingerprint([]byte("not pem")); err == nil {
		t.Error("garbage has a fingerprint")
	}
}

func TestHostLabelsAndImages(t *testing.T) {
	s := &agentRegister{h: manifests.Host{Name: "h1", Labels: map[string]string{"zone": "a", "az": "1"}}}
	if got := hostLabels(s.wantLabels()); got != "az=1&io.haplan.host=h1&zone=a" {
		t.Errorf("CATTLE_HOST_LABELS = %q", got)
	}
	for img, ok := range map[string]bool{
		"rancher/agent:v1.0.1": true, "10.213.0.2:5000/rancher/agent:v1.0.1": true,
		"rancher/agent@sha256:" + strings.Repeat("a", 64): true,
		"rancher/agent": false, "rancher/agent:v1.0.1; rm -rf /": false, "-v /:/x": false,
	} {
		if imageRefRE.MatchString(img) != ok {
			t.Errorf("image %q accepted = %v, want %v", img, !ok, ok)
		}
	}
}

func TestAgentRegisterDiff(t *testing.T) {
	s := &agentRegister{base: base{addr: "agent.register[h1]", host: "h1"}, h: manifests.Host{Name: "h1", Environment: "Default"}}
	s.env = &Env{c: &manifests.Cluster{}}
	healthy := registeredHost{Env: "Default", ID: "1h1", State: "active", Labels: map[string]string{manifests.HostLabel: "h1"}}
	gone := healthy
	gone.AgentState = "reconnecting"
	elsewhere := healthy
	elsewhere.Env, elsewhere.ID = "Staging", "1h9"
	for _, tc := range []struct {
		name     string
		st       agentRegisterState
		want     plans.Action
		warnings int
	}{
		{"before the cluster answers", agentRegisterState{}, plans.Create, 0},
		{"not registered", agentRegisterState{Started: true, Agent: "absent"}, plans.Create, 0},
		{"healthy", agentRegisterState{Started: true, Agent: "running", Hosts: []registeredHost{healthy}}, plans.NoOp, 0},
		{"agent container gone", agentRegisterState{Started: true, Agent: "absent", Hosts: []registeredHost{healthy}}, plans.Update, 0},
		{"agent disconnected", agentRegisterState{Started: true, Agent: "running", Hosts: []registeredHost{gone}}, plans.Update, 0},
		{"in another environment", agentRegisterState{Started: true, Agent: "running", Hosts: []registeredHost{elsewhere}}, plans.Replace, 0},
		{"healthy here, a stale copy elsewhere", agentRegisterState{Started: true, Agent: "running", Hosts: []registeredHost{healthy, elsewhere}}, plans.NoOp, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := s.Diff(tc.st)
			if c.Action != tc.want || len(c.Warnings) != tc.warnings {
				t.Errorf("Diff = %v %q %q, want %v with %d warnings", c.Action, c.Reason, c.Warnings, tc.want, tc.warnings)
			}
		})
	}
}

func TestRotateBackupsKeepsEachKindAndTheNewest(t *testing.T) {
	dir := t.TempDir()
	for i := range 12 {
		p := filepath.Join(dir, fmt.Sprintf("prod-pre-upgrade-202601%02dT000000Z.sql", i+1))
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	destroy := filepath.Join(dir, "prod-pre-destroy-20261201T120000Z.sql")
	if err := os.WriteFile(destroy, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := rotateBackups(dir, "prod", "pre-destroy", 10); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(destroy); err != nil {
		t.Fatalf("the dump just written was rotated away: %v", err)
	}
	if err := rotateBackups(dir, "prod", "pre-upgrade", 10); err != nil {
		t.Fatal(err)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "prod-pre-upgrade-*.sql"))
	if len(left) != 10 || filepath.Base(left[0]) != "prod-pre-upgrade-20260103T000000Z.sql" {
		t.Errorf("pre-upgrade dumps left %v, want the newest 10", left)
	}
	if _, err := os.Stat(destroy); err != nil {
		t.Error("rotating upgrades removed the destroy backup")
	}
}
