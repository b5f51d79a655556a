package resources

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/haplan/haplan/engine"
	"github.com/haplan/haplan/layout"
	"github.com/haplan/haplan/plans"
	"github.com/haplan/haplan/transport/transporttest"
)

// selfSignedCA is a CA certificate in PEM, as a node's ca.crt holds it.
func selfSignedCA(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "unit CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// Before any node holds a script the check only says so: no API is asked.
func TestHAVerifyNotStarted(t *testing.T) {
	r := newRig(t)
	r.noScript("rs1", "rs2", "rs3")
	g := r.graph("ha.verify")
	p := r.plan(g)
	c := planned(t, p, "ha.verify")
	if c.Action != plans.NoOp || !c.Check || c.Reason != "cluster not started yet" || len(c.Warnings) != 0 {
		t.Errorf("change %s check=%v %q %q", c.Action, c.Check, c.Reason, c.Warnings)
	}
	for _, n := range []string{"rs1", "rs2", "rs3"} {
		for _, d := range r.host(n).Dials() {
			if strings.HasPrefix(d, "tcp ") {
				t.Errorf("%s: dialled %s for a cluster not started", n, d)
			}
		}
	}
	// Nothing upstream changed: apply does not run the check.
	res, err := r.apply(g, p)
	if err != nil || outcome(t, res, "ha.verify").Status != engine.StatusUnchanged {
		t.Errorf("apply: %v, %v", err, outcome(t, res, "ha.verify").Status)
	}
	r.fleet.AssertExpectationsMet(t)
}

// A silent node while no answering node holds a script: the check is not
// probed, and stays a check.
func TestHAVerifyUnknownWhileANodeIsSilent(t *testing.T) {
	r := newRig(t)
	r.noScript("rs1", "rs2")
	r.fleet.Unreachable("rs3")
	p := r.plan(r.graph("ha.verify"))
	c := planned(t, p, "ha.verify")
	if c.Action != plans.Unknown || !c.Check || c.Unreachable != "rs3" {
		t.Errorf("change %s check=%v unreachable %q", c.Action, c.Check, c.Unreachable)
	}
}

// A started cluster whose APIs and load balancer do not answer is a plan
// with warnings (one per node, one for the LB), not a failed plan. Every
// connection goes through SSH: each node's API to 127.0.0.1:18080 through
// that node, the LB's 443 through the LB's own connection.
func TestHAVerifyReportsWhatDoesNotAnswer(t *testing.T) {
	r := newRig(t)
	for _, n := range []string{"rs1", "rs2", "rs3"} {
		r.holdScript(n, unitScript)
	}
	// No API serves the CA: the LB is still checked, against what the
	// nodes' ca.crt files hold (rs1's; the others have none).
	r.host("rs1").On(transporttest.ReadOf(layout.CA)).Stdout(string(selfSignedCA(t)))
	r.host("rs2").On(transporttest.ReadOf(layout.CA)).Absent()
	r.host("rs3").On(transporttest.ReadOf(layout.CA)).Absent()
	p := r.plan(r.graph("ha.verify"))
	c := planned(t, p, "ha.verify")
	if c.Action != plans.NoOp || !c.Check {
		t.Fatalf("change %s check=%v", c.Action, c.Check)
	}
	if !strings.HasPrefix(c.Reason, "0/3 nodes active") {
		t.Errorf("reason %q", c.Reason)
	}
	var nodes, lb int
	for _, w := range c.Warnings {
		switch {
		case strings.HasPrefix(w, "HA node ") && strings.Contains(w, "cannot read its API"):
			nodes++
		case strings.HasPrefix(w, "load balancer: https://rancher.example.com/ping via 10.0.0.10:443"):
			lb++
		}
	}
	if nodes != 3 || lb != 1 {
		t.Errorf("warnings %q: want one per node and one for the load balancer", c.Warnings)
	}
	for _, n := range []string{"rs1", "rs2", "rs3"} {
		if !slices.Contains(r.host(n).Dials(), "tcp 127.0.0.1:18080") {
			t.Errorf("%s: its API was not dialled through its SSH connection: %v", n, r.host(n).Dials())
		}
	}
	if !slices.Contains(r.host(layout.LBHost).Dials(), "tcp 10.0.0.10:443") {
		t.Errorf("the LB's 443 was not dialled through the LB's SSH connection: %v", r.host(layout.LBHost).Dials())
	}
	r.fleet.AssertExpectationsMet(t)
}

// A node whose ca.crt does not start with the CA the server serves is
// named, with the fingerprints: it is the file operators copy to hosts by
// hand. That includes a file that holds it after another (cluster-manager
// appends the CA to a file that differs) and a missing file; a file that
// starts with it is not named.
func TestHAVerifyNamesAStaleCAFile(t *testing.T) {
	ca, stale := selfSignedCA(t), selfSignedCA(t)
	fp := func(b []byte) string { return "SHA-1 " + sha1Fingerprint(pemCerts(b)[0]) }
	r := newRig(t)
	for _, n := range []string{"rs1", "rs2", "rs3"} {
		r.holdScript(n, unitScript)
		ha := systemHA("10.0.0.11", "10.0.0.12", "10.0.0.13")
		serveOn(t, r.host(n), layout.HAAPIPort, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if req.URL.Path == "/v1/scripts/ca.crt" {
				w.Write(ca)
				return
			}
			ha.ServeHTTP(w, req)
		}))
	}
	r.host("rs1").On(transporttest.ReadOf(layout.CA)).Stdout(string(stale))
	r.host("rs2").On(transporttest.ReadOf(layout.CA)).Stdout(string(stale) + string(ca))
	r.host("rs3").On(transporttest.ReadOf(layout.CA)).Stdout(string(ca) + string(stale))
	c := planned(t, r.plan(r.graph("ha.verify")), "ha.verify")
	named := map[string]string{}
	for _, w := range c.Warnings {
		if strings.Contains(w, layout.CA) {
			named[strings.SplitN(strings.TrimPrefix(w, "HA node "), ":", 2)[0]] = w
		}
	}
	want := "does not start with the cluster CA (" + fp(ca) + ", which the server serves and its registration commands pin)"
	if w := named["rs1"]; !strings.Contains(w, want) || !strings.Contains(w, "it holds "+fp(stale)+".") {
		t.Errorf("rs1 (another CA): %q, want it to name both", w)
	}
	if w := named["rs2"]; !strings.Contains(w, want) || !strings.Contains(w, "it holds it after another ("+fp(stale)+", "+fp(ca)+")") {
		t.Errorf("rs2 (the CA after another): %q, want it to say so", w)
	}
	if w, ok := named["rs3"]; ok {
		t.Errorf("rs3's file starts with the cluster CA, and is named: %q", w)
	}
	r.fleet.AssertExpectationsMet(t)
}
