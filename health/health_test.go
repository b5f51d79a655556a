package health

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// healthy is a three-node cluster with one registered host, all well.
func healthy() *Report {
	r := &Report{Cluster: "lab", Image: "rancher/server:v1.0.1",
		Database:    Database{Address: "10.0.0.3:3306", Reachable: true, Connections: 40, MaxConnections: 150},
		LB:          LB{URL: "https://10.0.0.4", Ping: true},
		Certificate: &Certificate{Subject: "10.0.0.4", NotAfter: now.Add(900 * 24 * time.Hour)}}
	for i, n := range []string{"rs1", "rs2", "rs3"} {
		r.Nodes = append(r.Nodes, Node{Name: n, Reachable: true, Container: "running", Image: r.Image, API: true})
		r.Members = append(r.Members, Member{ID: int64(i + 1), IP: n, Moving: true, Master: i == 0})
		r.SystemHA = append(r.SystemHA, Host{ID: "1h" + n, State: "active"})
	}
	r.Hosts = []RegisteredHost{{Name: "h1", Environment: "Default", Rancher: &Host{ID: "1h9", State: "active"}, Agent: "running"}}
	return r
}

func TestEvaluate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		break_  func(r *Report)
		verdict Severity
		subject string
	}{
		{"healthy", func(*Report) {}, OK, ""},
		{"one node down", func(r *Report) {
			r.Nodes[1] = Node{Name: "rs2", Err: "connection refused"}
			r.Members[1].Moving = false
			r.SystemHA[1].AgentState = "reconnecting"
		}, Degraded, "rs2"},
		{"two of three nodes down: no quorum", func(r *Report) {
			r.Nodes[1].Container, r.Nodes[2].Container = "exited", "absent"
		}, Down, "cluster"},
		{"database stopped", func(r *Report) { r.Database = Database{Address: "10.0.0.3:3306", Err: "connection refused"} }, Down, "database"},
		{"connections nearly exhausted", func(r *Report) { r.Database.Connections = 140 }, Degraded, "database"},
		{"certificate ends in 30 days", func(r *Report) { r.Certificate.NotAfter = now.Add(30 * 24 * time.Hour) }, Degraded, "certificate"},
		{"host agent gone", func(r *Report) { r.Hosts[0].Agent = "absent" }, Degraded, "h1"},
		{"old image on a node", func(r *Report) { r.Nodes[2].Image = "rancher/server:v1.0.0" }, Degraded, "rs3"},
		{"load balancer", func(r *Report) { r.LB = LB{URL: "https://10.0.0.4", Err: "EOF"} }, Down, "load balancer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := healthy()
			tc.break_(r)
			r.Evaluate(now)
			if got := r.Verdict(); got != tc.verdict {
				t.Errorf("verdict %s, want %s (findings %+v)", got, tc.verdict, r.Findings)
			}
			if tc.subject != "" {
				found := false
				for _, f := range r.Findings {
					found = found || f.Subject == tc.subject
				}
				if !found {
					t.Errorf("no finding about %s: %+v", tc.subject, r.Findings)
				}
			}
			var b bytes.Buffer
			if err := Render(&b, r, now); err != nil {
				t.Fatal(err)
			}
			if first, _, _ := strings.Cut(b.String(), "\n"); !strings.Contains(first, strings.ToUpper(tc.verdict.String())) {
				t.Errorf("the first line %q does not give the verdict", first)
			}
		})
	}
}
