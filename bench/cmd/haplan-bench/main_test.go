package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/haplan/haplan/lab"
	"github.com/haplan/haplan/manifests"
	"golang.org/x/crypto/ssh"
)

func TestBenchManifest(t *testing.T) {
	dir := t.TempDir()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	// Files as the lab writes them: validation reads the key and the
	// known_hosts files.
	for f, content := range map[string]string{"secrets/db-password": "x\n", "secrets/db-admin-password": "y\n",
		"ssh/id_ed25519": string(pem.EncodeToMemory(key)), "ssh/known_hosts": "", "fleet/known_hosts": ""} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	hosts := []lab.Host{
		{Name: "db", Role: lab.RoleDB, IP: "10.213.0.3"}, {Name: "lb", Role: lab.RoleLB, IP: "10.213.0.4"},
		{Name: "rs1", Role: lab.RoleNode, IP: "10.213.1.1"}, {Name: "h1", Role: lab.RoleAgent, IP: "10.213.2.1"},
	}
	fleet := []lab.FleetHost{{Name: "f1", IP: "10.213.4.1"}, {Name: "f2", IP: "10.213.4.2"}}
	kh := filepath.Join(dir, "fleet/known_hosts")
	text, err := benchManifest(string(lab.RenderManifest(hosts)), fleet, kh, filepath.Join(dir, "ssh/id_ed25519"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "bench-cluster-2.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	c, ds := manifests.Load(path)
	if ds.HasErrors() {
		t.Fatalf("%v\n%s", ds, text)
	}
	if len(c.Nodes) != 1 || c.Nodes[0].Name != "rs1" || c.Name != "lab" {
		t.Errorf("nodes %+v, name %q", c.Nodes, c.Name)
	}
	if len(c.Hosts) != 2 || c.Hosts[1].Name != "f2" || c.Hosts[1].SSH.KnownHostsFile != kh {
		t.Errorf("hosts %+v", c.Hosts)
	}
	if c.Nodes[0].SSH.KnownHostsFile != filepath.Join(dir, "ssh/known_hosts") {
		t.Errorf("node known_hosts %q", c.Nodes[0].SSH.KnownHostsFile)
	}
	if strings.Contains(text, "h1") {
		t.Errorf("the lab's agent hosts are still there:\n%s", text)
	}
	if _, err := benchManifest("name: x\n", fleet, kh, ""); err == nil {
		t.Error("a manifest without hosts was accepted")
	}
}

func TestAnalyse(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	lines := `{"time":"` + at(5).Format(time.RFC3339Nano) + `","kind":"apply_started","address":"db.database","phase":"apply"}
{"time":"` + at(6).Format(time.RFC3339Nano) + `","kind":"apply_finished","address":"db.database","phase":"apply"}
{"time":"` + at(6).Format(time.RFC3339Nano) + `","kind":"apply_started","address":"bootstrap.run","phase":"apply"}
{"time":"` + at(7).Format(time.RFC3339Nano) + `","kind":"progress","address":"bootstrap.run","phase":"apply","message":"starting haplan-bootstrap on rs1"}
{"time":"` + at(8).Format(time.RFC3339Nano) + `","kind":"progress","address":"bootstrap.run","phase":"apply","message":"waiting for http://10.213.1.1:18080/ping (0s of 10m0s)"}
{"time":"` + at(10).Format(time.RFC3339Nano) + `","kind":"progress","address":"bootstrap.run","phase":"apply","message":"waiting for http://10.213.1.1:18080/ping (2s of 10m0s)"}
{"time":"` + at(30).Format(time.RFC3339Nano) + `","kind":"apply_finished","address":"bootstrap.run","phase":"apply"}
{"time":"` + at(30).Format(time.RFC3339Nano) + `","kind":"apply_started","address":"ha.start[rs1]","phase":"apply"}
{"time":"` + at(31).Format(time.RFC3339Nano) + `","kind":"apply_finished","address":"ha.start[rs1]","phase":"apply"}
{"time":"` + at(31).Format(time.RFC3339Nano) + `","kind":"apply_started","address":"ha.verify","phase":"apply"}
{"time":"` + at(50).Format(time.RFC3339Nano) + `","kind":"apply_finished","address":"ha.verify","phase":"apply"}
`
	evs, err := parseEvents(strings.NewReader("plan text on another stream\n" + lines))
	if err != nil {
		t.Fatal(err)
	}
	o, err := analyse(evs, t0, at(52), at(29.6), at(49.5))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"wall", o.Wall, 52}, {"bootstrap wait", o.BootstrapWait, 21.6}, {"cluster wait", o.ClusterWait, 18.5},
		{"haplan bootstrap wait", o.HaplanBootstrapWait, 22}, {"haplan cluster wait", o.HaplanClusterWait, 19}, {"poll lag", o.PollLag, 0.9},
		{"overhead", o.Overhead, 11.9}, {"percent", o.Percent, 100 * 11.9 / 52}, {"before", o.BeforeFirstStep, 5},
		{"idle", o.Idle, 0}, {"after", o.AfterLastStep, 2}, {"steps work", o.StepsWork, 4.9},
	} {
		if math.Abs(c.got-c.want) > 1e-9 {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	// An observer that missed both moments (haplan saw them first): the
	// waits end where haplan's checks passed.
	missed, err := analyse(evs, t0, at(52), time.Time{}, at(51))
	if err != nil {
		t.Fatal(err)
	}
	if missed.BootstrapWait != 22 || missed.ClusterWait != 19 || missed.PollLag != 0 || len(missed.SeenByHaplan) != 2 {
		t.Errorf("observer missed both: %+v", missed)
	}
	if _, err := analyse(evs, t0, at(52), at(7), at(49.5)); err == nil {
		t.Error("a bootstrap seen ready before haplan started waiting was accepted")
	}
	if _, err := analyse(evs[:2], t0, at(10), at(9), at(9)); err == nil {
		t.Error("an apply without bootstrap.run and ha.verify was accepted")
	}
	failed := append(evs[:2:2], event{Time: at(7), Kind: "apply_failed", Address: "bootstrap.run", Message: "boom"})
	if _, err := analyse(failed, t0, at(10), at(9), at(9)); err == nil {
		t.Error("a failed apply was accepted")
	}
}

// The window ends at the first answer after the last failure that follows
// the first stop, once steadyAnswers answers follow it: answers between
// the stop and the failure (the other nodes still served), answers between
// failures, even steadyAnswers of them (the load balancer sent the probes
// to a node not yet stopped), and failures before the stop do not end it.
// Samples count by the time they were sent, whatever order they came back
// in.
func TestProberBackAfter(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	samples := []probeSample{{at(0), false}, {at(1), true}, {at(2), true}, {at(3), false}, {at(4), true}, {at(5), false}}
	for i := range steadyAnswers {
		samples = append(samples, probeSample{at(6 + float64(i)), true})
	}
	samples[3], samples[len(samples)-1] = samples[len(samples)-1], samples[3] // out of order
	p := &prober{samples: samples}
	got, err := p.backAfter(context.Background(), at(0.5), time.Second)
	if err != nil || !got.Equal(at(6)) {
		t.Errorf("backAfter = %v, %v; want %v", got, err, at(6))
	}
	var between []probeSample
	for i := range 9 + steadyAnswers {
		// failures at 1 and 9, answers in between; the end at 10
		between = append(between, probeSample{at(1 + float64(i)), i != 0 && i != 8})
	}
	p = &prober{samples: between}
	if got, err := p.backAfter(context.Background(), at(0.5), time.Second); err != nil || !got.Equal(at(10)) {
		t.Errorf("backAfter with 7 answers between two failures = %v, %v; want %v", got, err, at(10))
	}
	p = &prober{samples: []probeSample{{at(1), true}, {at(2), true}}}
	if _, err := p.backAfter(context.Background(), at(0.5), 10*time.Millisecond); err == nil {
		t.Error("no failure after the stop: want an error, not a window")
	}
	if got := outageRatio([]outageRun{{Tool: "haplan", Scenario: "upgrade", Window: 10}, {Tool: "manual", Scenario: "upgrade", Window: 25}, {Tool: "haplan", Scenario: "upgrade", Window: 30}, {Tool: "haplan", Scenario: "upgrade", Window: 9}, {Tool: "manual", Scenario: "resize", Window: 1}}, "upgrade"); !strings.Contains(got, "haplan 10.0 s, manual 25.0 s: manual / haplan = 2.5×") {
		t.Errorf("outageRatio = %q", got)
	}
}

// The manual resize's haproxy edit: each backend gains the new nodes next
// to the last old one, on that backend's port, with its check options.
func TestAddServers(t *testing.T) {
	cfg, err := os.ReadFile("../../../resources/testdata/haproxy.cfg")
	if err != nil {
		t.Fatal(err)
	}
	last := lab.Host{Name: "rs3"}
	news := []lab.Host{{Name: "rs4", IP: "10.0.0.4"}, {Name: "rs5", IP: "10.0.0.5"}}
	got, added := addServers(string(cfg), last, news)
	if added != 4 {
		t.Errorf("added %d lines, want 4 (two backends, two nodes)", added)
	}
	for _, want := range []string{
		"    server rs3 10.0.0.3:80 check port 18080 inter 2s fastinter 500ms downinter 500ms fall 3 rise 2\n    server rs4 10.0.0.4:80 check port 18080 inter 2s fastinter 500ms downinter 500ms fall 3 rise 2\n    server rs5 10.0.0.5:80 check port 18080 inter 2s fastinter 500ms downinter 500ms fall 3 rise 2\n",
		"    server rs5 10.0.0.5:443 check port 18080 inter 2s fastinter 500ms downinter 500ms fall 3 rise 2\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("config lacks %q:\n%s", want, got)
		}
	}
	if _, added := addServers(string(cfg), lab.Host{Name: "rs9"}, news); added != 0 {
		t.Errorf("after a node with no server line: %d added, want 0", added)
	}
	if got := outageRatio([]outageRun{{Tool: "haplan", Scenario: "upgrade", Window: 1}}, "resize"); !strings.Contains(got, "no pair") {
		t.Errorf("outageRatio of a scenario with no runs = %q", got)
	}
}

func TestRegRatio(t *testing.T) {
	rs := []regRun{{Tool: "haplan", N: 10, Wall: 4}, {Tool: "manual", N: 10, Wall: 12}, {Tool: "haplan", N: 10, Wall: 6},
		{Tool: "manual", N: 10, Wall: 20}, {Tool: "haplan", N: 50, Wall: 9}}
	if got := regRatio(rs, 10); !strings.Contains(got, "haplan 4.0 s, manual 12.0 s: manual / haplan = 3.0×") {
		t.Errorf("regRatio(10) = %q", got)
	}
	if got := regRatio(rs, 50); !strings.Contains(got, "no pair") {
		t.Errorf("regRatio(50) without a manual run = %q", got)
	}
	if got := regSizesRun(rs); !slices.Equal(got, []int{10, 50}) {
		t.Errorf("regSizesRun = %v", got)
	}
}
