package resources

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/haplan/haplan/transport"

	"github.com/google/go-cmp/cmp"

	"github.com/haplan/haplan/engine"
	"github.com/haplan/haplan/manifests"
	"github.com/haplan/haplan/plans"
)

// testCluster is a three-node cluster as the manifest loader would return it.
func testCluster() *manifests.Cluster {
	ssh := manifests.SSH{User: "root", Port: 22, HostKeyPolicy: "strict"}
	c := &manifests.Cluster{
		Name: "test",
		Rancher: manifests.Rancher{
			Image:               "rancher/server:v1.0.1",
			AgentImage:          manifests.DefaultAgentImage,
			AgentInstanceImage:  manifests.DefaultAgentInstanceImage,
			HostRegistrationURL: "https://10.0.0.10",
			BootstrapNode:       "rs1",
			Timeouts:            manifests.Timeouts{Bootstrap: time.Minute, ClusterFormation: time.Minute, SSH: time.Second},
		},
		Database: manifests.Database{Host: "10.0.0.20", Port: 3306, Name: "cattle", User: "cattle",
			Admin: manifests.DBAdmin{User: "root"}},
		LoadBalancer: manifests.LoadBalancer{Address: "10.0.0.10",
			HAProxy: &manifests.HAProxy{ConfigPath: "/etc/haproxy/haproxy.cfg", ReloadCommand: "service haproxy reload", SSH: ssh}},
		Hosts: []manifests.Host{{Name: "h1", Address: "10.0.1.1", SSH: ssh}},
	}
	for i, n := range []string{"rs1", "rs2", "rs3"} {
		ip := "10.0.0." + string(rune('1'+i))
		c.Nodes = append(c.Nodes, manifests.Node{Name: n, Address: ip, ClusterIP: ip, SSH: ssh})
	}
	return c
}

func testEnv(c *manifests.Cluster) *Env { return &Env{c: c} }

func TestCompileGraph(t *testing.T) {
	c := testCluster()
	steps, err := Compile(c, testEnv(c))
	if err != nil {
		t.Fatal(err)
	}
	g, err := engine.NewGraph(steps)
	if err != nil {
		t.Fatalf("compiled steps do not form a graph: %v", err)
	}
	deps := map[string][]string{}
	for _, s := range g.Steps() {
		for _, d := range s.Deps() {
			deps[string(s.Addr())] = append(deps[string(s.Addr())], string(d))
		}
	}
	want := map[string][]string{
		"db.grant[rs1]":       {"db.database"},
		"db.grant[rs2]":       {"db.database"},
		"db.grant[rs3]":       {"db.database"},
		"bootstrap.run":       {"db.grant[rs1]", "db.grant[rs2]", "db.grant[rs3]", "image.pull[rs1]"},
		"script.generate":     {"bootstrap.run", "db.backup"},
		"ha.retire":           {"db.backup", "script.generate"},
		"bootstrap.stop":      {"script.generate"},
		"ha.start[rs1]":       {"script.generate", "bootstrap.stop", "image.pull[rs1]", "ha.stop[rs1]", "ha.retire", "db.grant[rs1]"},
		"ha.stop[rs1]":        {"db.backup", "image.pull[rs1]", "script.generate", "ha.retire"},
		"ha.start[rs2]":       {"script.generate", "bootstrap.stop", "image.pull[rs2]", "ha.stop[rs2]", "ha.retire", "db.grant[rs2]"},
		"ha.stop[rs2]":        {"db.backup", "image.pull[rs2]", "script.generate", "ha.retire"},
		"ha.start[rs3]":       {"script.generate", "bootstrap.stop", "image.pull[rs3]", "ha.stop[rs3]", "ha.retire", "db.grant[rs3]"},
		"ha.stop[rs3]":        {"db.backup", "image.pull[rs3]", "script.generate", "ha.retire"},
		"ha.verify":           {"ha.start[rs1]", "ha.start[rs2]", "ha.start[rs3]", "lb.config"},
		"cert.distribute[h1]": {"ha.verify"},
		"agent.prune":         {"ha.verify"},
		"ha.prune":            {"ha.verify"},
		"db.prune":            {"ha.prune"},
	}
	if diff := cmp.Diff(want, deps); diff != "" {
		t.Errorf("dependencies (-want +got):\n%s", diff)
	}
}

func TestDiffs(t *testing.T) {
	c := testCluster()
	e := testEnv(c)
	n := c.Nodes[1]
	b := func(a engine.Addr, host string) base { return base{addr: a, host: host, env: e} }
	lb := &lbConfig{base: b("lb.config", "lb")}
	rendered := digest(lb.render())
	tests := []struct {
		name       string
		step       engine.Step
		state      engine.State
		wantAction plans.Action
		wantReason string // substring
		wantWarn   string // substring of a warning; "" = no warnings
	}{
		{"database missing", &dbDatabase{base: b("db.database", "")}, dbDatabaseState{MaxConnections: 151}, plans.Create, `"cattle" does not exist`, ""},
		{"database present", &dbDatabase{base: b("db.database", "")}, dbDatabaseState{Exists: true, Charset: "utf8mb3", MaxConnections: 151}, plans.NoOp, "exists", ""},
		{"too few connections", &dbDatabase{base: b("db.database", "")}, dbDatabaseState{Exists: true, Charset: "utf8", MaxConnections: 100}, plans.NoOp, "exists", "need at least 150"},
		{"latin1 database", &dbDatabase{base: b("db.database", "")}, dbDatabaseState{Exists: true, Charset: "latin1", MaxConnections: 500}, plans.NoOp, "exists", "latin1"},
		{"user missing", &dbGrant{base: b("db.grant[rs2]", ""), grantHost: n.Address}, dbGrantState{}, plans.Create, "does not exist", ""},
		{"password changed", &dbGrant{base: b("db.grant[rs2]", ""), grantHost: n.Address}, dbGrantState{UserExists: true, PasswordKnown: true, HasGrant: true}, plans.Update, "password differs", ""},
		{"grant missing", &dbGrant{base: b("db.grant[rs2]", ""), grantHost: n.Address}, dbGrantState{UserExists: true, PasswordKnown: true, PasswordMatch: true}, plans.Update, "missing ALL", ""},
		{"grant ok", &dbGrant{base: b("db.grant[rs2]", ""), grantHost: n.Address}, dbGrantState{UserExists: true, PasswordKnown: true, PasswordMatch: true, HasGrant: true}, plans.NoOp, "has ALL", ""},
		{"grant, sha2 password", &dbGrant{base: b("db.grant[rs2]", ""), grantHost: n.Address}, dbGrantState{UserExists: true, Plugin: "caching_sha2_password", HasGrant: true}, plans.NoOp, "has ALL", "cannot compare"},
		{"lb missing", lb, lbConfigState{}, plans.Create, "does not exist", ""},
		{"lb drifted", lb, lbConfigState{Exists: true, Digest: "sha256:00", Running: true}, plans.Update, "differs", ""},
		{"lb stopped", lb, lbConfigState{Exists: true, Digest: rendered}, plans.Update, "not running", ""},
		{"lb ok", lb, lbConfigState{Exists: true, Digest: rendered, Running: true}, plans.NoOp, "serves", ""},
		{"images missing", &imagePull{base: b("image.pull[rs2]", "rs2"), node: n}, imagePullState{}, plans.Create,
			"images rancher/server:v1.0.1, rancher/agent:v1.0.1, rancher/agent-instance:v0.8.1 are not on rs2", ""},
		{"agent image missing", &imagePull{base: b("image.pull[rs2]", "rs2"), node: n},
			imagePullState{Images: map[string]string{"rancher/server:v1.0.1": "sha256:1", "rancher/agent-instance:v0.8.1": "sha256:3"}}, plans.Create,
			"image rancher/agent:v1.0.1 is not on rs2", ""},
		{"images present", &imagePull{base: b("image.pull[rs2]", "rs2"), node: n},
			imagePullState{Images: map[string]string{"rancher/server:v1.0.1": "sha256:1", "rancher/agent:v1.0.1": "sha256:2", "rancher/agent-instance:v0.8.1": "sha256:3"}}, plans.NoOp, "present", ""},
		{"bootstrap needed", &bootstrapRun{base: b("bootstrap.run", "rs1"), node: c.Nodes[0]}, bootstrapState{Container: "absent"}, plans.Create, "start a bootstrap server", ""},
		{"bootstrap not needed", &bootstrapRun{base: b("bootstrap.run", "rs1"), node: c.Nodes[0]}, bootstrapState{ScriptGenerated: true, Container: "absent"}, plans.NoOp, "already generated", ""},
		{"bootstrap running", &bootstrapRun{base: b("bootstrap.run", "rs1"), node: c.Nodes[0]}, bootstrapState{Container: "running", Image: "rancher/server:v1.0.1"}, plans.Update, "wait", ""},
		{"bootstrap exited", &bootstrapRun{base: b("bootstrap.run", "rs1"), node: c.Nodes[0]}, bootstrapState{Container: "exited", Image: "rancher/server:v1.0.1"}, plans.Replace, "exited", ""},
		{"stop: will be started", &bootstrapStop{base: b("bootstrap.stop", "rs1"), node: c.Nodes[0]}, bootstrapStopState{Container: "absent"}, plans.Delete, "once the script is generated", ""},
		{"stop: leftover", &bootstrapStop{base: b("bootstrap.stop", "rs1"), node: c.Nodes[0]}, bootstrapStopState{Container: "running", ScriptGenerated: true}, plans.Delete, "no longer needed", ""},
		{"stop: nothing", &bootstrapStop{base: b("bootstrap.stop", "rs1"), node: c.Nodes[0]}, bootstrapStopState{Container: "absent", ScriptGenerated: true}, plans.NoOp, "no bootstrap", ""},
		{"ha not running", &haStart{base: b("ha.start[rs2]", "rs2"), node: n}, haStartState{Container: "absent"}, plans.Create, "not running", ""},
		{"ha other image", &haStart{base: b("ha.start[rs2]", "rs2"), node: n}, haStartState{Container: "running", Image: "rancher/server:v1.0.0", ClusterIP: n.ClusterIP}, plans.Replace, "v1.0.0", ""},
		{"ha other ip", &haStart{base: b("ha.start[rs2]", "rs2"), node: n}, haStartState{Container: "running", Image: "rancher/server:v1.0.1", ClusterIP: "1.2.3.4"}, plans.Replace, "cluster IP", ""},
		{"ha other script", &haStart{base: b("ha.start[rs2]", "rs2"), node: n}, haStartState{Container: "running", Image: "rancher/server:v1.0.1", ClusterIP: n.ClusterIP, ScriptDigest: "sha256:a", StartedWith: "sha256:b"}, plans.Replace, "another rancher-ha.sh", ""},
		{"ha ok", &haStart{base: b("ha.start[rs2]", "rs2"), node: n}, haStartState{Container: "running", Image: "rancher/server:v1.0.1", ClusterIP: n.ClusterIP, ScriptDigest: "sha256:a", StartedWith: "sha256:a"}, plans.NoOp, "running", ""},
		{"ha restarting", &haStart{base: b("ha.start[rs2]", "rs2"), node: n}, haStartState{Container: "restarting", Image: "rancher/server:v1.0.1", ClusterIP: n.ClusterIP}, plans.NoOp, "restarting", "docker logs"},
		{"verify fresh", &haVerify{base: b("ha.verify", "")}, haVerifyState{}, plans.NoOp, "not started", ""},
		{"verify degraded", &haVerify{base: b("ha.verify", "")}, haVerifyState{Started: true, LB: true,
			Nodes:    map[string]nodeHealth{"rs1": {API: true, Active: true}, "rs2": {API: true, Active: true}, "rs3": {API: true}},
			Observed: map[string]string{"rs3": "System HA host 10.0.0.13 is active, agent reconnecting"}}, plans.NoOp, "2/3", "HA node rs3: System HA host 10.0.0.13 is active, agent reconnecting"},
		{"verify node down", &haVerify{base: b("ha.verify", "")}, haVerifyState{Started: true,
			Nodes: map[string]nodeHealth{"rs1": {API: true, Active: true}, "rs2": {API: true, Active: true}, "rs3": {}}}, plans.NoOp, "2/3", "HA node rs3: its API could not be read"},
		{"verify ok", &haVerify{base: b("ha.verify", "")}, haVerifyState{Started: true, LB: true,
			Nodes: map[string]nodeHealth{"rs1": {API: true, Active: true}, "rs2": {API: true, Active: true}, "rs3": {API: true, Active: true}}}, plans.NoOp, "3/3 nodes active; load balancer: ok", ""},
		{"ca missing", &certDistribute{base: b("cert.distribute[h1]", "h1")}, certState{ClusterCA: "sha256:ca"}, plans.Create, "missing", ""},
		{"ca wrong", &certDistribute{base: b("cert.distribute[h1]", "h1")}, certState{Exists: true, Digest: "sha256:x", Mode: "0400", ClusterCA: "sha256:ca"}, plans.Update, "not the cluster CA", ""},
		{"ca mode", &certDistribute{base: b("cert.distribute[h1]", "h1")}, certState{Exists: true, Digest: "sha256:ca", Mode: "0644", ClusterCA: "sha256:ca"}, plans.Update, "mode 0644", ""},
		{"ca ok", &certDistribute{base: b("cert.distribute[h1]", "h1")}, certState{Exists: true, Digest: "sha256:ca", Mode: "0400", ClusterCA: "sha256:ca"}, plans.NoOp, "is the cluster CA", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.step.Diff(tt.state)
			if got.Action != tt.wantAction {
				t.Errorf("action = %v, want %v (reason %q)", got.Action, tt.wantAction, got.Reason)
			}
			if !strings.Contains(got.Reason, tt.wantReason) {
				t.Errorf("reason %q does not contain %q", got.Reason, tt.wantReason)
			}
			warns := strings.Join(got.Warnings, "\n")
			if (tt.wantWarn == "") != (warns == "") || !strings.Contains(warns, tt.wantWarn) {
				t.Errorf("warnings %q, want one containing %q", warns, tt.wantWarn)
			}
			if got.Addr != string(tt.step.Addr()) {
				t.Errorf("change address %q, want %q", got.Addr, tt.step.Addr())
			}
		})
	}
}

func TestScriptDiff(t *testing.T) {
	c := testCluster()
	e := testEnv(c)
	s := &scriptGenerate{base: base{addr: "script.generate", env: e}, boot: c.Nodes[0]}
	want := e.wantParams()
	all := func(d string) map[string]string { return map[string]string{"rs1": d, "rs2": d, "rs3": d} }
	params := func(p scriptParams) map[string]scriptParams {
		return map[string]scriptParams{"rs1": p, "rs2": p, "rs3": p}
	}
	tests := []struct {
		name   string
		st     scriptState
		action plans.Action
		reason string
		warn   string
	}{
		{"none anywhere", scriptState{Digest: map[string]string{}}, plans.Create, "generate rancher-ha.sh", ""},
		{"everywhere", scriptState{Digest: all("sha256:a"), Params: params(want)}, plans.NoOp, "every node", ""},
		{"lost on rs3", scriptState{Digest: map[string]string{"rs1": "sha256:a", "rs2": "sha256:a"}, Params: params(want)}, plans.Update, "from rs1 to rs3", ""},
		{"manifest resized", scriptState{Digest: all("sha256:a"), Params: params(scriptParams{ClusterSize: 5, RegistrationURL: want.RegistrationURL})}, plans.Replace, "resize from 5 to 3 nodes: a new rancher-ha.sh from createscript on the running cluster's API", ""},
		// rs3 did not answer: it is not a node to copy to, and is named.
		{"rs3 unreadable, rs2 lost it", scriptState{Digest: map[string]string{"rs1": "sha256:a"}, Params: params(want), Unreadable: []string{"rs3"}},
			plans.Update, "from rs1 to rs2 (", "not checked on rs3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := s.Diff(tt.st)
			if got.Action != tt.action || !strings.Contains(got.Reason, tt.reason) {
				t.Errorf("got %v %q, want %v containing %q", got.Action, got.Reason, tt.action, tt.reason)
			}
			w := strings.Join(got.Warnings, "\n")
			if (tt.warn == "") != (w == "") || !strings.Contains(w, tt.warn) {
				t.Errorf("warnings %q, want %q", w, tt.warn)
			}
		})
	}
}

func TestConfEdit(t *testing.T) {
	in := "# agent settings\nexport CURL_CA_BUNDLE=/x\nexport CATTLE_AGENT_IP=1.1.1.1\n"
	got := setConf(in, map[string]string{"CATTLE_AGENT_IP": "10.0.0.2", "CATTLE_HA_CLUSTER_IP": "10.0.0.2"})
	want := "# agent settings\nexport CURL_CA_BUNDLE=/x\nexport CATTLE_AGENT_IP=10.0.0.2\nexport CATTLE_HA_CLUSTER_IP=10.0.0.2\n"
	if got != want {
		t.Errorf("setConf:\n%s\nwant:\n%s", got, want)
	}
	if v := confValue(got, "CATTLE_HA_CLUSTER_IP"); v != "10.0.0.2" {
		t.Errorf("confValue = %q", v)
	}
	if again := setConf(got, map[string]string{"CATTLE_AGENT_IP": "10.0.0.2", "CATTLE_HA_CLUSTER_IP": "10.0.0.2"}); again != got {
		t.Errorf("setConf is not idempotent:\n%s", again)
	}
	if got := setConf("", map[string]string{"A": "1"}); got != "export A=1\n" {
		t.Errorf("setConf on empty = %q", got)
	}
}

func TestSQLHelpers(t *testing.T) {
	// MySQL's documented PASSWORD('password').
	if got := nativePasswordHash("password"); got != "*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19" {
		t.Errorf("nativePasswordHash(password) = %q", got)
	}
	for _, tt := range []struct {
		line string
		want bool
	}{
		{"GRANT ALL PRIVILEGES ON `cattle`.* TO `cattle`@`10.0.0.1`", true},
		{"GRANT ALL PRIVILEGES ON *.* TO `root`@`%` WITH GRANT OPTION", true},
		{"GRANT USAGE ON *.* TO `cattle`@`10.0.0.1` IDENTIFIED BY PASSWORD '*X'", false},
		{"GRANT ALL PRIVILEGES ON `other`.* TO `cattle`@`10.0.0.1`", false},
	} {
		if got := grantsAllOn(tt.line, "cattle"); got != tt.want {
			t.Errorf("grantsAllOn(%q) = %v", tt.line, got)
		}
	}
	if got := quoteString(`a'b\c`); got != `'a\'b\\c'` {
		t.Errorf("quoteString = %s", got)
	}
	if got := quoteIdent("we`ird"); got != "`we``ird`" {
		t.Errorf("quoteIdent = %s", got)
	}
}

func TestServerFlavor(t *testing.T) {
	for _, tt := range []struct {
		version string
		want    flavor
	}{
		{"10.11.18-MariaDB-0+deb12u1", flavorMariaDB},
		{"5.5.5-10.6.12-MariaDB", flavorMariaDB},
		{"5.7.44-log", flavorMySQLNative},
		{"8.0.36", flavorMySQLNative},
		{"8.4.0", flavorMySQLOther},
		{"9.1.0", flavorMySQLOther},
		{"garbage", flavorMySQLOther},
	} {
		if got := serverFlavor(tt.version); got != tt.want {
			t.Errorf("serverFlavor(%q) = %v, want %v", tt.version, got, tt.want)
		}
	}
}

// settled refuses to let anything decide on generating a script while a
// node that did not answer may hold one: a second encryption key.
func TestScriptFactsSettled(t *testing.T) {
	down := &transport.ConnectError{Host: "rs2", Address: "10.0.0.12:22", Attempts: 4, Err: errors.New("no route to host")}
	order := []string{"rs1", "rs2", "rs3"}
	tests := []struct {
		name    string
		f       scriptFacts
		settled bool
	}{
		{"all answered, none has one", scriptFacts{Digest: map[string]string{}, order: order}, true},
		{"rs2 down, rs1 has one", scriptFacts{Digest: map[string]string{"rs1": "sha256:a"}, Unreadable: map[string]error{"rs2": down}, order: order}, true},
		{"rs2 down, none that answered has one", scriptFacts{Digest: map[string]string{}, Unreadable: map[string]error{"rs2": down}, order: order}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.f.settled()
			if (err == nil) != tt.settled {
				t.Fatalf("settled() = %v, want settled %t", err, tt.settled)
			}
			if err != nil {
				if h, ok := engine.IsUnreachable(err); !ok || h != "rs2" {
					t.Errorf("settled() = %v: not an Unreachable naming rs2, so the steps would fail the plan instead of being not probed", err)
				}
			}
		})
	}
}
