package resources

import (
	"io/fs"
	"strings"
	"testing"

	"github.com/haplan/haplan/engine"
	"github.com/haplan/haplan/layout"
	"github.com/haplan/haplan/plans"
	"github.com/haplan/haplan/transport/transporttest"
)

var unitCA = []byte("-----BEGIN CERTIFICATE-----\nMIIBunitCA\n-----END CERTIFICATE-----\n")

// caOnRS2 makes the cluster CA readable on rs2 only: rs1 has none yet, and
// rs3 is not asked (the first node that has it answers).
func caOnRS2(r *rig) {
	r.host("rs1").On(transporttest.ReadOf(layout.CA)).Absent()
	r.host("rs2").On(transporttest.ReadOf(layout.CA)).Stdout(string(unitCA))
}

// A host without the CA gets the cluster's, read from the first node that
// has it, mode 0400.
func TestCertDistributeInstallsCA(t *testing.T) {
	r := newRig(t)
	caOnRS2(r)
	h1 := r.host("h1")
	h1.On(transporttest.StatOf(layout.CA)).Absent()
	h1.On(transporttest.WriteOf(layout.CA)).Once()
	g := r.graph("cert.distribute[h1]")
	p := r.plan(g)
	c := planned(t, p, "cert.distribute[h1]")
	if c.Action != plans.Create || c.Host != "h1" {
		t.Fatalf("change %s on %q, want create on h1", c.Action, c.Host)
	}
	if len(c.Details) == 0 || c.Details[0].New != short(digest(unitCA)) {
		t.Errorf("details %+v, want the CA's digest", c.Details)
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
// one is left alone.
func TestCertDistributeDrift(t *testing.T) {
	cases := []struct {
		name   string
		mode   fs.FileMode
		data   []byte
		action plans.Action
		reason string
	}{
		{"mode", 0o644, unitCA, plans.Update, "has mode 0644, want 0400"},
		{"content", 0o400, []byte("another CA\n"), plans.Update, "is not the cluster CA"},
		{"converged", 0o400, unitCA, plans.NoOp, "is the cluster CA, mode 0400"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			caOnRS2(r)
			h1 := r.host("h1")
			h1.On(transporttest.StatOf(layout.CA)).Stat(tc.mode, tc.data)
			if tc.action != plans.NoOp {
				h1.On(transporttest.WriteOf(layout.CA)).Once()
			}
			g := r.graph("cert.distribute[h1]")
			p := r.plan(g)
			c := planned(t, p, "cert.distribute[h1]")
			if c.Action != tc.action || !strings.Contains(c.Reason, tc.reason) {
				t.Fatalf("change %s %q, want %s %q", c.Action, c.Reason, tc.action, tc.reason)
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

// Before any node has the CA the host's copy is planned, but apply writes
// nothing and fails saying why.
func TestCertDistributeWithoutClusterCA(t *testing.T) {
	r := newRig(t)
	for _, n := range []string{"rs1", "rs2", "rs3"} {
		r.host(n).On(transporttest.ReadOf(layout.CA)).Absent()
	}
	h1 := r.host("h1")
	h1.On(transporttest.StatOf(layout.CA)).Absent()
	g := r.graph("cert.distribute[h1]")
	p := r.plan(g)
	if c := planned(t, p, "cert.distribute[h1]"); c.Action != plans.Create || !strings.Contains(c.Details[0].New, "known once the cluster has formed") {
		t.Errorf("change %s %+v", c.Action, c.Details)
	}
	_, err := r.apply(g, p)
	if err == nil || !strings.Contains(err.Error(), "no node has the cluster CA") {
		t.Errorf("err = %v", err)
	}
	if len(h1.Writes()) != 0 {
		t.Error("wrote a CA that does not exist")
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
	t.Run("every node", func(t *testing.T) {
		r := newRig(t)
		for _, n := range []string{"rs1", "rs2", "rs3"} {
			r.fleet.Unreachable(n)
		}
		r.host("h1").On(transporttest.StatOf(layout.CA)).Absent()
		p := r.plan(r.graph("cert.distribute[h1]"))
		c := planned(t, p, "cert.distribute[h1]")
		if c.Action != plans.Unknown || c.Unreachable != "rs1" || !strings.Contains(c.Reason, "read the cluster CA") {
			t.Errorf("change %s, unreachable %q, reason %q", c.Action, c.Unreachable, c.Reason)
		}
		r.fleet.AssertExpectationsMet(t)
	})
}
