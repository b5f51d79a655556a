//go:build lab

package e2e

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	"github.com/haplan/haplan/lab"
)

type statusOut struct {
	Findings []struct {
		Severity string `json:"severity"`
		Subject  string `json:"subject"`
		Message  string `json:"message"`
	} `json:"findings"`
	Nodes []struct {
		Name      string `json:"name"`
		Container string `json:"container"`
		API       bool   `json:"api"`
	} `json:"nodes"`
	Members []struct {
		Master bool `json:"master"`
		Moving bool `json:"heartbeat_moving"`
	} `json:"members"`
}

func status(t *testing.T, ctx context.Context, manifest string) (int, statusOut) {
	t.Helper()
	r := haplan(t, ctx, "status", "-f", manifest, "--json")
	var out statusOut
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("status --json printed no report (exit %d): %v\n%s", r.code, err, r.stdout)
	}
	return r.code, out
}

func subjects(s statusOut) []string {
	var out []string
	for _, f := range s.Findings {
		out = append(out, f.Subject)
	}
	return out
}

// checkStatus asks haplan status about the converged cluster, then with a
// node stopped, then with the database stopped: the verdicts follow what
// was done to the lab (0, 4 naming the node, 5 naming the database).
func checkStatus(t *testing.T, ctx context.Context, l *lab.Lab, manifest string, nodes []string) {
	code, s := status(t, ctx, manifest)
	if code != 0 || len(s.Findings) != 0 {
		t.Errorf("status of the converged cluster: exit %d, findings %+v; want 0 and none", code, s.Findings)
	}
	masters, moving := 0, 0
	for _, m := range s.Members {
		if m.Master {
			masters++
		}
		if m.Moving {
			moving++
		}
	}
	if len(s.Members) != len(nodes) || masters != 1 || moving != len(nodes) {
		t.Errorf("members %+v: want %d, all heartbeating, one master", s.Members, len(nodes))
	}

	if err := l.Kill(ctx, "rs2"); err != nil {
		t.Fatal(err)
	}
	code, s = status(t, ctx, manifest)
	if err := l.Start(ctx, "rs2"); err != nil {
		t.Fatal(err)
	}
	if code != 4 || !slices.Contains(subjects(s), "rs2") {
		t.Errorf("status with rs2 stopped: exit %d, findings %+v; want 4 (degraded) naming rs2", code, s.Findings)
	}

	if err := l.Kill(ctx, "db"); err != nil {
		t.Fatal(err)
	}
	code, s = status(t, ctx, manifest)
	if err := l.Start(ctx, "db"); err != nil {
		t.Fatal(err)
	}
	if code != 5 || !slices.Contains(subjects(s), "database") {
		t.Errorf("status with the database stopped: exit %d, findings %+v; want 5 (down) naming the database", code, s.Findings)
	}
	converge(t, ctx, l, manifest, nodes)
}
