package health

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Render writes the report for people: one screen, the verdict first.
func Render(w io.Writer, r *Report, now time.Time) error {
	ew := &errWriter{w: w}
	verdict := r.Verdict()
	ew.printf("Cluster %s: %s (checked %s)\n", r.Cluster, strings.ToUpper(verdict.String()), r.Checked.Format(time.RFC3339))
	fs := slices.Clone(r.Findings)
	slices.SortStableFunc(fs, func(a, b Finding) int { return cmp.Compare(a.Severity, b.Severity) })
	for _, f := range fs {
		ew.printf("  %-8s %s: %s\n", strings.ToUpper(f.Severity.String()), f.Subject, f.Message)
	}

	ew.printf("\nNodes:\n")
	members := map[string]Member{}
	for _, m := range r.Members {
		members[m.IP] = m
	}
	for _, n := range r.Nodes {
		api := "API ok"
		if !n.API {
			api = "API down"
		}
		line := fmt.Sprintf("  %-10s %-15s rancher-ha %s", n.Name, n.Address, cmp.Or(n.Container, "unknown"))
		if n.Image != "" {
			line += " (" + n.Image + ")"
		}
		line += ", " + api
		ew.printf("%s\n", line)
	}
	if len(r.Members) > 0 {
		ew.printf("\nMembership (cluster table):\n")
		for _, m := range r.Members {
			role := ""
			if m.Master {
				role = ", master"
			}
			beat := "heartbeat moving"
			if !m.Moving {
				beat = "heartbeat STOPPED"
			}
			ew.printf("  id %-4d %-15s index %d, %s%s\n", m.ID, m.IP, m.Index, beat, role)
		}
	}
	if len(r.SystemHA) > 0 {
		ew.printf("\nSystem HA hosts:\n")
		for _, h := range r.SystemHA {
			ew.printf("  %-6s %-15s %s, agent %s\n", h.ID, strings.Join(h.Addresses, ","), h.State, cmp.Or(h.AgentState, "connected"))
		}
	}
	if len(r.Hosts) > 0 {
		ew.printf("\nHosts:\n")
		for _, h := range r.Hosts {
			where := "not registered"
			if h.Rancher != nil {
				where = fmt.Sprintf("%s %s, agent %s", h.Rancher.ID, h.Rancher.State, cmp.Or(h.Rancher.AgentState, "connected"))
			}
			ew.printf("  %-10s %-10s %s; rancher-agent %s\n", h.Name, h.Environment, where, h.Agent)
		}
	}
	ew.printf("\nDatabase %s: ", r.Database.Address)
	if r.Database.Reachable {
		ew.printf("%d of max_connections %d in use\n", r.Database.Connections, r.Database.MaxConnections)
	} else {
		ew.printf("does not answer (%s)\n", r.Database.Err)
	}
	ew.printf("Load balancer %s: ", r.LB.URL)
	if r.LB.Ping {
		ew.printf("pong\n")
	} else {
		ew.printf("%s\n", cmp.Or(r.LB.Err, "no pong"))
	}
	if c := r.Certificate; c != nil {
		ew.printf("Certificate %s: valid until %s (%d days)\n", c.Subject, c.NotAfter.Format(time.DateOnly), int(c.NotAfter.Sub(now).Hours()/24))
	}
	return ew.err
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}
