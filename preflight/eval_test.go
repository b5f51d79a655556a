package preflight

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/haplan/haplan/dockerapi"
)

func TestEvalPorts(t *testing.T) {
	sshd := listener{Addr: "0.0.0.0", Port: 22, Process: "sshd", PID: 12}
	tests := []struct {
		name      string
		facts     portFacts
		bootstrap bool
		want      []Finding
	}{
		{
			name:      "clean node",
			facts:     portFacts{Listeners: parseSS(ssLab)},
			bootstrap: true,
			want: []Finding{
				{Severity: OK, Check: "ports", Host: "rs1", Message: "ports 22, 80, 81, 443, 444, 18080, 2181, 2376, 2888, 3888, 6379 are free"},
				{Severity: OK, Check: "bootstrap.port", Host: "rs1", Message: "8080/tcp is free for the bootstrap server"},
			},
		},
		{
			name: "nginx on 80, redis on 6379, a foreign container on 18080",
			facts: portFacts{
				Listeners:  parseSS(ssBusy),
				Containers: []dockerapi.Container{{Name: "web", Ports: []int{18080}}},
			},
			want: []Finding{
				{Severity: Error, Check: "ports", Host: "rs1", Message: "port 80/tcp is held by nginx (pid 1234) on 0.0.0.0",
					Hint: "Rancher HA needs 80/tcp on every node: stop or move what holds it"},
				{Severity: Error, Check: "ports", Host: "rs1", Message: "port 18080/tcp is held by docker-proxy (pid 4242) for container web on 0.0.0.0",
					Hint: "Rancher HA needs 18080/tcp on every node: stop or move what holds it"},
				{Severity: Error, Check: "ports", Host: "rs1", Message: "port 6379/tcp is held by redis-server (pid 77) on *",
					Hint: "Rancher HA needs 6379/tcp on every node: stop or move what holds it"},
			},
		},
		{
			name: "our own rancher-ha-parent publishes 18080 (docker-proxy)",
			facts: portFacts{
				Listeners:  []listener{sshd, {Addr: "0.0.0.0", Port: 18080, Process: "docker-proxy", PID: 9}},
				Containers: []dockerapi.Container{{Name: "rancher-ha-parent", Ports: []int{18080}}},
			},
			want: []Finding{{Severity: OK, Check: "ports", Host: "rs1", Message: "ports 22, 80, 81, 443, 444, 18080, 2181, 2376, 2888, 3888, 6379 are free"}},
		},
		{
			name: "rancher-ha runs with host networking: its processes hold the HA ports",
			facts: portFacts{
				Listeners: []listener{sshd,
					{Addr: "*", Port: 18080, Process: "rancher-standin", PID: 50},
					{Addr: "*", Port: 2181, Process: "java", PID: 51},
					{Addr: "*", Port: 8080, Process: "rancher-standin", PID: 50}},
				Containers: []dockerapi.Container{{Name: "rancher-ha"}},
			},
			bootstrap: true,
			want: []Finding{
				{Severity: OK, Check: "ports", Host: "rs1", Message: "ports 22, 80, 81, 443, 444, 18080, 2181, 2376, 2888, 3888, 6379 are free or held by this cluster's rancher-ha"},
				{Severity: OK, Check: "bootstrap.port", Host: "rs1", Message: "8080/tcp is held by rancher-standin (pid 50) while rancher-ha runs"},
			},
		},
		{
			name: "haplan-bootstrap holds 8080",
			facts: portFacts{
				Listeners:  []listener{sshd, {Addr: "0.0.0.0", Port: 8080, Process: "docker-proxy", PID: 9}},
				Containers: []dockerapi.Container{{Name: "haplan-bootstrap", Ports: []int{8080}}},
			},
			bootstrap: true,
			want: []Finding{
				{Severity: OK, Check: "ports", Host: "rs1", Message: "ports 22, 80, 81, 443, 444, 18080, 2181, 2376, 2888, 3888, 6379 are free"},
				{Severity: OK, Check: "bootstrap.port", Host: "rs1", Message: "8080/tcp is held by haplan's own haplan-bootstrap"},
			},
		},
		{
			name:      "something else holds 8080 on the bootstrap node, without process info",
			facts:     portFacts{Listeners: []listener{{Addr: "0100007F", Port: 8080}}},
			bootstrap: true,
			want: []Finding{
				{Severity: OK, Check: "ports", Host: "rs1", Message: "ports 22, 80, 81, 443, 444, 18080, 2181, 2376, 2888, 3888, 6379 are free"},
				{Severity: Error, Check: "bootstrap.port", Host: "rs1", Message: "port 8080/tcp is held by an unknown process on 0100007F",
					Hint: "the bootstrap server publishes 8080 on the bootstrap node: stop what holds it, or choose another rancher.bootstrapNode"},
			},
		},
		{
			name:  "8080 is only checked on the bootstrap node",
			facts: portFacts{Listeners: []listener{{Addr: "*", Port: 8080, Process: "tomcat"}}},
			want:  []Finding{{Severity: OK, Check: "ports", Host: "rs1", Message: "ports 22, 80, 81, 443, 444, 18080, 2181, 2376, 2888, 3888, 6379 are free"}},
		},
		{
			name:  "22 held by something other than sshd",
			facts: portFacts{Listeners: []listener{{Addr: "*", Port: 22, Process: "dropbear", PID: 3}}},
			want: []Finding{{Severity: Error, Check: "ports", Host: "rs1", Message: "port 22/tcp is held by dropbear (pid 3) on *",
				Hint: "Rancher HA needs 22/tcp on every node: stop or move what holds it"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, evalPorts("rs1", tt.facts, tt.bootstrap)); diff != "" {
				t.Errorf("evalPorts (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParsePortsOutput(t *testing.T) {
	got, err := parsePortsOutput("#ss\n" + ssLab)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Listeners) != 3 || got.Listeners[1].Process != "sshd" {
		t.Errorf("parsePortsOutput = %+v", got)
	}
	if _, err := parsePortsOutput("sh: 1: syntax error\n"); err == nil {
		t.Error("parsePortsOutput accepted garbage")
	}
}

func TestEvalReach(t *testing.T) {
	targets := []reachTarget{
		{Node: "rs2", Addr: "10.0.0.12", Port: 22},
		{Node: "rs2", Addr: "10.0.0.12", Port: 2181},
		{Node: "rs3", Addr: "10.0.0.13", Port: 2222},
	}
	tests := []struct {
		name string
		out  string
		want []Finding
	}{
		{"all open", "10.0.0.13 2222 0\n10.0.0.12 22 0\n10.0.0.12 2181 0\n", []Finding{
			{Severity: OK, Check: "reach", Host: "rs1", Message: "reaches rs2:22, rs2:2181, rs3:2222"},
		}},
		{"closed ports are errors", "10.0.0.12 22 1\n10.0.0.12 2181 1\n10.0.0.13 2222 0\n", []Finding{
			{Severity: Error, Check: "reach", Host: "rs1", Message: "cannot reach rs2 at 10.0.0.12:22/tcp",
				Hint: "open TCP between the nodes' cluster addresses (firewall, security group, routing)"},
			{Severity: Error, Check: "reach", Host: "rs1", Message: "cannot reach rs2 at 10.0.0.12:2181/tcp",
				Hint: "open TCP between the nodes' cluster addresses (firewall, security group, routing)"},
		}},
		{"missing line counts as unreachable", "10.0.0.12 22 0\n10.0.0.12 2181 0\n", []Finding{
			{Severity: Error, Check: "reach", Host: "rs1", Message: "cannot reach rs3 at 10.0.0.13:2222/tcp",
				Hint: "open TCP between the nodes' cluster addresses (firewall, security group, routing)"},
		}},
		{"no probe tool", "10.0.0.12 22 127\n", []Finding{
			{Severity: Warning, Check: "reach", Host: "rs1", Message: "cannot probe other nodes: neither nc nor bash is installed",
				Hint: "install netcat (nc) to let haplan check node-to-node ports"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, evalReach("rs1", targets, tt.out)); diff != "" {
				t.Errorf("evalReach (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReportRenderAndErr(t *testing.T) {
	r := &Report{Findings: []Finding{
		{Severity: OK, Check: "ssh", Host: "rs1", Message: "connected"},
		{Severity: Info, Check: "docker", Host: "rs2", Message: "Docker 1.10.3"},
		{Severity: Error, Check: "ports", Host: "rs2", Message: "port 80/tcp is held by nginx", Hint: "stop it"},
		{Severity: Warning, Check: "memory", Host: "rs1", Message: "2.0 GiB of memory, below 4 GB"},
		{Severity: OK, Check: "size", Message: "3 node(s)"},
	}}
	var b strings.Builder
	if err := Render(&b, r); err != nil {
		t.Fatal(err)
	}
	want := `rs2
  ERROR  ports   port 80/tcp is held by nginx
                 hint: stop it
  info   docker  Docker 1.10.3

rs1
  WARN   memory  2.0 GiB of memory, below 4 GB
  ok     ssh     connected

cluster
  ok     size    3 node(s)

Preflight: 1 error, 1 warning: apply is blocked.
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("Render (-want +got):\n%s", diff)
	}

	err := r.Err()
	var be *BlockedError
	if !errors.Is(err, ErrBlocked) || !errors.As(err, &be) || len(be.Findings) != 1 {
		t.Fatalf("Err() = %v", err)
	}
	if got, want := err.Error(), "preflight: 1 blocking problem: rs2: ports: port 80/tcp is held by nginx"; got != want {
		t.Errorf("Err().Error() = %q, want %q", got, want)
	}
	if r.OK() || len(r.Warnings()) != 1 {
		t.Errorf("OK() = %v, Warnings() = %v", r.OK(), r.Warnings())
	}
	if (&Report{Findings: []Finding{{Severity: Warning}}}).Err() != nil {
		t.Error("a warning blocked")
	}
}

func TestReportJSON(t *testing.T) {
	r := &Report{Findings: []Finding{
		{Severity: Error, Check: "mysql.admin", Host: "db", Message: "denied", Hint: "check"},
		{Severity: OK, Check: "size", Message: "3 node(s)"},
	}}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"findings":[{"severity":"error","check":"mysql.admin","host":"db","message":"denied","hint":"check"},` +
		`{"severity":"ok","check":"size","message":"3 node(s)"}]}`
	if string(b) != want {
		t.Errorf("json = %s\nwant   %s", b, want)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r, &back); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func TestEvalHostDocker(t *testing.T) {
	for _, tc := range []struct {
		name string
		ev   dockerapi.EngineVersion
		want []Severity
	}{
		{"recent, old APIs still accepted", dockerapi.EngineVersion{Version: "20.10.24", APIVersion: "1.41", MinAPIVersion: "1.12"}, []Severity{Info}},
		{"too old for the agent", dockerapi.EngineVersion{Version: "1.5.0"}, []Severity{Info, Error}},
		{"refuses the agent's API 1.18", dockerapi.EngineVersion{Version: "26.1.0", APIVersion: "1.45", MinAPIVersion: "1.24"}, []Severity{Info, Error}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []Severity
			for _, f := range evalHostDocker("h1", tc.ev) {
				got = append(got, f.Severity)
				if f.Host != "h1" || f.Check != "docker" {
					t.Errorf("finding %+v: want host h1, check docker", f)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("severities (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEvalVersion(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    dockerapi.Container
		want []Severity
	}{
		{"absent", dockerapi.Container{Status: "absent"}, nil},
		{"same", dockerapi.Container{Status: "running", Image: "rancher/server:v1.0.1"}, nil},
		{"upgrade", dockerapi.Container{Status: "running", Image: "rancher/server:v1.0.0"}, []Severity{Info}},
		{"downgrade", dockerapi.Container{Status: "running", Image: "rancher/server:v1.0.2"}, []Severity{Error}},
		{"unreadable tag", dockerapi.Container{Status: "running", Image: "rancher/server:mine"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []Severity
			for _, f := range evalVersion("rs1", tc.c, "rancher/server:v1.0.1") {
				got = append(got, f.Severity)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("severities (-want +got):\n%s", diff)
			}
		})
	}
}
