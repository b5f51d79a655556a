package resources

import (
	"bytes"
	"errors"
	"io/fs"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/haplan/haplan/engine"
	"github.com/haplan/haplan/layout"
	"github.com/haplan/haplan/plans"
	"github.com/haplan/haplan/transport/transporttest"
)

// caAPI makes node's API serve ca as the cluster CA (/ping and
// /v1/scripts/ca.crt, as a formed cluster's nodes do; anything else is not
// found).
func caAPI(t *testing.T, node *transporttest.Runner, ca []byte) {
	t.Helper()
	serveOn(t, node, layout.HAAPIPort, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		switch req.URL.Path {
		case "/ping":
			w.Header().Set("Content-Type", "text/plain")
			w.Write([]byte("pong"))
		case "/v1/scripts/ca.crt":
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Write(ca)
			w.Write(ca) // cattle v0.159.7 writes it twice
		default:
			http.NotFound(w, req)
		}
	}))
}

// caOnRS2 makes rs2's API serve the cluster CA: rs1's API does not answer,
// and rs3 is not asked (the first node that answers does). It returns the
// CA.
func caOnRS2(r *rig) []byte {
	ca := selfSignedCA(r.t)
	caAPI(r.t, r.host("rs2"), ca)
	return ca
}

// A host without the CA gets the cluster's, as the first node whose API
// answers serves it, mode 0400.
func TestCertDistributeInstallsCA(t *testing.T) {
	r := newRig(t)
	unitCA := caOnRS2(r)
	h1 := r.host("h1")
	h1.On(transporttest.StatOf(layout.CA)).Absent()
	h1.On(transporttest.WriteOf(layout.CA)).Once()
	g := r.graph("cert.distribute[h1]")
	p := r.plan(g)
	c := planned(t, p, "cert.distribute[h1]")
	if c.Action != plans.Create || c.Host != "h1" {
		t.Fatalf("change %s on %q, want create on h1", c.Action, c.Host)
	}
	if len(c.Details) == 0 || c.Details[0].New != "SHA-1 "+sha1Fingerprint(pemCerts(unitCA)[0]) {
		t.Errorf("details %+v, want the CA's SHA-1 fingerprint", c.Details)
	}
	res, err := r.apply(g, p)
	if err != nil {
		t.Fatal(err)
	}
	if s := outcome(t, res, "cert.distribute[h1]"); s.Status != engine.StatusApplied {
		t.Errorf("status %s", s.Status)
	}
	w, ok := h1.Written(layout.CA)
	if !ok || w.Mode != 0o400 || string(w.Data) != string(unitCA) {
		t.Errorf("CA written %v, mode %v, %q; want the cluster CA, 0400", ok, w.Mode, w.Data)
	}
	r.fleet.AssertExpectationsMet(t)
}

// A CA with the wrong mode or the wrong content is rewritten; the right
// one is left alone. A CA that is not the cluster's is named by its SHA-1
// fingerprint next to the cluster's.
func TestCertDistributeDrift(t *testing.T) {
	unitCA, other := selfSignedCA(t), selfSignedCA(t)
	fp := func(b []byte) string { return "SHA-1 " + sha1Fingerprint(pemCerts(b)[0]) }
	cases := []struct {
		name   string
		mode   fs.FileMode
		data   []byte
		action plans.Action
		reason string
		old    string // the ca.crt detail's Old; "-": the file is read, no detail
	}{
		{"mode", 0o644, unitCA, plans.Update, "has mode 0644, want 0400", ""},
		{"another CA", 0o400, other, plans.Update, "is not the cluster CA", fp(other)},
		{"the cluster CA after another (a node's appended file)", 0o400, append(append([]byte{}, other...), unitCA...), plans.Update, "is not the cluster CA", fp(other) + " and 1 more certificates"},
		{"not a certificate", 0o400, []byte("another CA\n"), plans.Update, "is not the cluster CA", "no certificate"},
		{"converged", 0o400, unitCA, plans.NoOp, "is the cluster CA, mode 0400", ""},
		{"the cluster CA with other line endings", 0o400, bytes.ReplaceAll(unitCA, []byte("\n"), []byte("\r\n")), plans.NoOp, "is the cluster CA, mode 0400", "-"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			caAPI(t, r.host("rs2"), unitCA)
			h1 := r.host("h1")
			h1.On(transporttest.StatOf(layout.CA)).Stat(tc.mode, tc.data)
			if tc.old != "" {
				h1.On(transporttest.ReadOf(layout.CA)).Stdout(string(tc.data))
			}
			if tc.action != plans.NoOp {
				h1.On(transporttest.WriteOf(layout.CA)).Once()
			}
			g := r.graph("cert.distribute[h1]")
			p := r.plan(g)
			c := planned(t, p, "cert.distribute[h1]")
			if c.Action != tc.action || !strings.Contains(c.Reason, tc.reason) {
				t.Fatalf("change %s %q, want %s %q", c.Action, c.Reason, tc.action, tc.reason)
			}
			if tc.old != "" && tc.old != "-" {
				want := []plans.Detail{{Name: "ca.crt", Old: tc.old, New: fp(unitCA)}}
				if diff := cmp.Diff(want, c.Details); diff != "" {
					t.Errorf("details (-want +got):\n%s", diff)
				}
			}
			if _, err := r.apply(g, p); err != nil {
				t.Fatal(err)
			}
			if tc.action != plans.NoOp {
				if w, _ := h1.Written(layout.CA); w.Mode != 0o400 || string(w.Data) != string(unitCA) {
					t.Errorf("rewritten with mode %v, %q", w.Mode, w.Data)
				}
			}
			r.fleet.AssertExpectationsMet(t)
		})
	}
}

// While no node's API serves the CA (the cluster has not formed) the
// host's copy is planned, but apply writes nothing and fails saying why.
// A node's ca.crt is not asked: it is not the source.
func TestCertDistributeWithoutClusterCA(t *testing.T) {
	r := newRig(t)
	h1 := r.host("h1")
	h1.On(transporttest.StatOf(layout.CA)).Absent()
	g := r.graph("cert.distribute[h1]")
	p := r.plan(g)
	if c := planned(t, p, "cert.distribute[h1]"); c.Action != plans.Create || !strings.Contains(c.Details[0].New, "known once the cluster's API serves it") {
		t.Errorf("change %s %+v", c.Action, c.Details)
	}
	_, err := r.apply(g, p)
	if !errors.Is(err, errNoClusterCA) {
		t.Errorf("err = %v, want errNoClusterCA", err)
	}
	if len(h1.Writes()) != 0 {
		t.Error("wrote a CA that does not exist")
	}
	for _, n := range []string{"rs1", "rs2", "rs3"} {
		for _, line := range r.host(n).Lines() {
			if strings.Contains(line, layout.CA) {
				t.Errorf("%s: %q: a node's ca.crt was read", n, line)
			}
		}
	}
	r.fleet.AssertExpectationsMet(t)
}

// A host that does not answer, and a cluster none of whose nodes answers,
// make the change Unknown rather than failing the plan.
func TestCertDistributeUnreachable(t *testing.T) {
	t.Run("host", func(t *testing.T) {
		r := newRig(t)
		caOnRS2(r)
		r.fleet.Unreachable("h1")
		p := r.plan(r.graph("cert.distribute[h1]"))
		if c := planned(t, p, "cert.distribute[h1]"); c.Action != plans.Unknown || c.Unreachable != "h1" {
			t.Errorf("change %s, unreachable %q; want unknown, h1", c.Action, c.Unreachable)
		}
	})
	// The cluster's CA cannot be known: a host without one still needs
	// it (create), one with a CA cannot be compared (deferred).
	t.Run("every node, a host without a CA", func(t *testing.T) {
		r := newRig(t)
		for _, n := range []string{"rs1", "rs2", "rs3"} {
			r.fleet.Unreachable(n)
		}
		r.host("h1").On(transporttest.StatOf(layout.CA)).Absent()
		p := r.plan(r.graph("cert.distribute[h1]"))
		if c := planned(t, p, "cert.distribute[h1]"); c.Action != plans.Create || c.Reason != layout.CA+" is missing" {
			t.Errorf("change %s, reason %q", c.Action, c.Reason)
		}
		r.fleet.AssertExpectationsMet(t)
	})
	t.Run("every node, a host with a CA", func(t *testing.T) {
		// Whether the cluster was started cannot be told either.
		r := newRig(t)
		for _, n := range []string{"rs1", "rs2", "rs3"} {
			r.fleet.Unreachable(n)
		}
		r.host("h1").On(transporttest.StatOf(layout.CA)).Stat(0o400, selfSignedCA(t))
		p := r.plan(r.graph("cert.distribute[h1]"))
		if c := planned(t, p, "cert.distribute[h1]"); c.Action != plans.Unknown || c.Unreachable != "rs1" {
			t.Errorf("change %s, unreachable %q, reason %q; want unknown, rs1", c.Action, c.Unreachable, c.Reason)
		}
	})
	t.Run("a started cluster whose API does not answer, a host with a CA", func(t *testing.T) {
		// Compared when apply gets there (the apply may start the
		// cluster); if the CA is still unknown then, the host's CA is
		// left as it is and the apply does not fail for it.
		r := newRig(t)
		for _, n := range []string{"rs1", "rs2", "rs3"} {
			r.holdScript(n, unitScript)
		}
		r.host("h1").On(transporttest.StatOf(layout.CA)).Stat(0o400, selfSignedCA(t))
		g := r.graph("cert.distribute[h1]")
		p := r.plan(g)
		c := planned(t, p, "cert.distribute[h1]")
		if c.Action != plans.Update || !c.Deferred || len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "no node's API serves the cluster CA now (the cluster's API does not answer on any node: rs1: ") {
			t.Errorf("change %s, deferred %v, reason %q, warnings %q; want a deferred update with a warning naming the nodes' answers", c.Action, c.Deferred, c.Reason, c.Warnings)
		}
		if _, err := r.apply(g, p); err != nil {
			t.Fatal(err)
		}
		if len(r.host("h1").Writes()) != 0 {
			t.Error("the host's CA was written while the cluster CA is unknown")
		}
	})
}
