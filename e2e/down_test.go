//go:build lab

package e2e

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/haplan/haplan/lab"
	"github.com/haplan/haplan/plans"
)

// checkMachinesDown stops node rs3 and host h3 and takes h1's CA away: the
// plan still covers the cluster, shows the stopped machines' steps as not
// probed, names them, and exits 1; apply repairs h1, fails the steps of
// the machines that are down without trying, and exits 1; once they are
// back, one apply converges.
func checkMachinesDown(t *testing.T, ctx context.Context, l *lab.Lab, manifest string, nodes []string) {
	sh(t, ctx, l, "h1", "rm -f /var/lib/rancher/etc/ssl/ca.crt")
	for _, m := range []string{"rs3", "h3"} {
		if err := l.Kill(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, m := range []string{"rs3", "h3"} {
			_ = l.Start(context.WithoutCancel(ctx), m)
		}
	})

	r := haplan(t, ctx, "plan", "-f", manifest, "--json")
	if r.code != 1 {
		t.Errorf("plan with rs3 and h3 down: exit %d, want 1 (incomplete)", r.code)
	}
	p, err := plans.Decode(strings.NewReader(r.stdout))
	if err != nil {
		t.Fatalf("plan --json with machines down printed no plan: %v", err)
	}
	var unknown, toDo []string
	for _, c := range p.Changes {
		switch {
		case c.Action == plans.Unknown:
			unknown = append(unknown, c.Addr)
			if !strings.Contains(c.Reason, c.Host+" did not answer") {
				t.Errorf("%s: reason %q does not name %s", c.Addr, c.Reason, c.Host)
			}
		case c.Pending():
			toDo = append(toDo, c.Addr)
		}
	}
	slices.Sort(unknown)
	if want := []string{"agent.register[h3]", "cert.distribute[h3]", "ha.start[rs3]", "ha.stop[rs3]", "image.pull[rs3]"}; !slices.Equal(unknown, want) {
		t.Errorf("not probed: %v, want %v", unknown, want)
	}
	if want := []string{"cert.distribute[h1]"}; !slices.Equal(toDo, want) {
		t.Errorf("pending: %v, want %v", toDo, want)
	}
	if !strings.Contains(r.stderr, "the plan is incomplete") {
		t.Errorf("plan's stderr does not say the plan is incomplete")
	}

	r = haplan(t, ctx, "apply", "-f", manifest, "--auto-approve")
	if r.code != 1 {
		t.Errorf("apply with rs3 and h3 down: exit %d, want 1", r.code)
	}
	for _, addr := range []string{"agent.register[h3]", "cert.distribute[h3]", "ha.start[rs3]", "ha.stop[rs3]", "image.pull[rs3]"} {
		if !regexp.MustCompile(`(?m)^  ✗ ` + regexp.QuoteMeta(addr) + `.*\n\s+.*not applied: it could not be probed`).MatchString(r.stdout) {
			t.Errorf("%s is not reported as failed because it could not be probed", addr)
		}
	}
	// h1 was repaired all the same: judged on h1 itself.
	if got := sh(t, ctx, l, "h1", "stat -c %a /var/lib/rancher/etc/ssl/ca.crt"); strings.TrimSpace(got) != "400" {
		t.Errorf("h1's CA after the apply: mode %q, want 400", got)
	}

	for _, m := range []string{"rs3", "h3"} {
		if err := l.Start(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if r := haplan(t, ctx, "apply", "-f", manifest, "--auto-approve"); r.code != 0 {
		t.Fatalf("apply once rs3 and h3 are back: exit %d", r.code)
	}
	if got := pending(t, ctx, manifest); len(got) != 0 {
		t.Fatalf("plan after they are back is not empty: %v", got)
	}
	checkCluster(t, ctx, l, nodes, nil)
}
