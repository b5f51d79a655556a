package resources

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/haplan/haplan/engine"
	"github.com/haplan/haplan/layout"
	"github.com/haplan/haplan/plans"
	"github.com/haplan/haplan/transport/transporttest"
)

// holdSizedScript makes node answer that it holds script, generated for
// size nodes with the manifest's other params.
func (r *rig) holdSizedScript(node string, script []byte, size int) {
	p := r.env.wantParams()
	p.ClusterSize = size
	meta, err := json.Marshal(scriptMeta{scriptParams: p, ScriptDigest: digest(script)})
	if err != nil {
		r.t.Fatal(err)
	}
	sum := sha256.Sum256(script)
	r.host(node).On(readScripts).Stdout(hex.EncodeToString(sum[:]) + "\n" + string(meta) + "\n")
}

// A resize while a node of the manifest does not answer is refused before
// anything runs: that node would keep the old size and encryption key.
func TestResizeRefusedWhileANodeIsSilent(t *testing.T) {
	r := newRig(t)
	r.holdSizedScript("rs1", unitScript, 1)
	r.holdSizedScript("rs2", unitScript, 1)
	r.fleet.Unreachable("rs3")
	_, err := engine.Plan(context.Background(), r.graph("script.generate"), engine.Options{})
	var re *ResizeError
	if !errors.As(err, &re) || re.From != 1 || re.To != 3 || len(re.Silent) != 1 || re.Silent[0] != "rs3" {
		t.Fatalf("plan: %v, want a ResizeError from 1 to 3 naming rs3", err)
	}
	if !strings.Contains(err.Error(), "cannot resize the cluster from 1 to 3 nodes while rs3 does not answer") {
		t.Errorf("error %q", err)
	}
}

// A node started with a script of another size stops and starts again;
// one that was started before records kept the size is judged by the
// script it still holds.
func TestResizeRestartsEveryNode(t *testing.T) {
	r := newRig(t)
	for _, n := range []string{"rs1", "rs2", "rs3"} {
		r.holdSizedScript(n, unitScript, 5)
	}
	old := `{"script_digest":"` + digest(unitScript) + `"}` // no size: the script's record says 5
	sized := `{"script_digest":"` + digest(unitScript) + `","cluster_size":5}`
	haStartNode(r, "rs1", "running rancher/server:v1.0.1", old, "export CATTLE_HA_CLUSTER_IP=10.0.0.11\n")
	haStartNode(r, "rs2", "running rancher/server:v1.0.1", sized, "export CATTLE_HA_CLUSTER_IP=10.0.0.12\n")
	haStartNode(r, "rs3", "absent", "", "")
	p := r.plan(r.graph("ha.stop[rs1]", "ha.stop[rs2]", "ha.stop[rs3]", "ha.start[rs1]", "ha.start[rs2]", "ha.start[rs3]"))
	for a, want := range map[string]plans.Action{
		"ha.stop[rs1]": plans.Delete, "ha.stop[rs2]": plans.Delete, "ha.stop[rs3]": plans.NoOp,
		"ha.start[rs1]": plans.Replace, "ha.start[rs2]": plans.Replace, "ha.start[rs3]": plans.Create,
	} {
		c := planned(t, p, engine.Addr(a))
		if c.Action != want {
			t.Errorf("%s: %s %q, want %s", a, c.Action, c.Reason, want)
		}
		if want == plans.Delete && !strings.Contains(c.Reason, "for the resize to 3 nodes") {
			t.Errorf("%s: reason %q", a, c.Reason)
		}
	}
}

// Machines that left the manifest and still run rancher-ha are stopped
// before the nodes start; those that do not run it are left to ha.prune.
func TestHARetireDiff(t *testing.T) {
	r := newRig(t)
	s := r.steps["ha.retire"]
	st := haPruneState{Started: true, Left: []leftOne{{ID: "1h4", Address: "10.0.0.14", Running: true}, {ID: "1h5", Address: "10.0.0.15"}}}
	c := s.Diff(st)
	if c.Action != plans.Delete || !strings.Contains(c.Reason, "stop rancher-ha on 10.0.0.14, which left the manifest") || strings.Contains(c.Reason, "10.0.0.15") {
		t.Errorf("%s %q", c.Action, c.Reason)
	}
	if c := s.Diff(haPruneState{Started: true, Left: []leftOne{{ID: "1h5", Address: "10.0.0.15"}}}); c.Action != plans.NoOp || len(c.Warnings) != 0 {
		t.Errorf("nothing running: %s %q %q", c.Action, c.Reason, c.Warnings)
	}
}

// A departed machine haplan cannot reach is not counted as stopped: the
// plan says it was not checked and what that leaves, and ha.prune removes
// its Rancher record only.
func TestDepartedUnreachable(t *testing.T) {
	r := newRig(t)
	st := haPruneState{Started: true, Left: []leftOne{{ID: "1h5", Address: "10.0.0.15", State: "active", Unchecked: true, NotChecked: "dial tcp 10.0.0.15:22: i/o timeout"}}}
	c := r.steps["ha.retire"].Diff(st)
	if c.Action != plans.NoOp || len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "10.0.0.15 left the manifest and cannot be checked (dial tcp 10.0.0.15:22: i/o timeout)") ||
		!strings.Contains(c.Warnings[0], "rejoins the cluster") || strings.Contains(c.Reason, "no machine that left the manifest runs") {
		t.Errorf("ha.retire: %s %q %q", c.Action, c.Reason, c.Warnings)
	}
	c = r.steps["ha.prune"].Diff(st)
	if c.Action != plans.Delete || len(c.Details) != 1 || !strings.Contains(c.Details[0].New, "cannot be reached: nothing removed there") {
		t.Errorf("ha.prune: %s %q %+v", c.Action, c.Reason, c.Details)
	}
}

// A member of the cluster that left the manifest and has no System HA host
// (a dead node switched on after its host was removed) is stopped by
// ha.retire and is nothing for ha.prune; a cluster table that cannot be
// read is said, not taken for "no such member".
func TestDepartedMemberWithoutHost(t *testing.T) {
	r := newRig(t)
	st := haPruneState{Started: true, Left: []leftOne{{Address: "10.0.0.13", State: "member of the cluster, no System HA host", Running: true}}}
	if c := r.steps["ha.retire"].Diff(st); c.Action != plans.Delete || !strings.Contains(c.Reason, "stop rancher-ha on 10.0.0.13") {
		t.Errorf("ha.retire: %s %q", c.Action, c.Reason)
	}
	if c := r.steps["ha.prune"].Diff(st); c.Action != plans.NoOp {
		t.Errorf("ha.prune for a member without a host: %s %q %+v", c.Action, c.Reason, c.Details)
	}
	// The API down: the members found in the cluster table are stopped
	// all the same, and the plan says System HA was not listed.
	c := r.steps["ha.retire"].Diff(haPruneState{Started: true, APIDown: true, Why: "no node answers", Left: st.Left})
	if c.Action != plans.Delete || len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "System HA could not be listed (no node answers)") {
		t.Errorf("API down: %s %q %q", c.Action, c.Reason, c.Warnings)
	}
	c = r.steps["ha.retire"].Diff(haPruneState{Started: true, MembersUnread: true, MembersWhy: "database 10.0.0.20:3306: connection refused"})
	if c.Action != plans.NoOp || len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "the cluster table could not be read (database 10.0.0.20:3306: connection refused)") {
		t.Errorf("unread cluster table: %s %q %q", c.Action, c.Reason, c.Warnings)
	}
}

// A running cluster whose script has another registration URL than the
// manifest is refused, naming both: hosts are bound to the URL, and a plan
// that only warned would say "No changes".
func TestScriptParamsChangeRefused(t *testing.T) {
	r := newRig(t)
	p := r.env.wantParams()
	p.RegistrationURL = "https://old.example.com"
	meta, err := json.Marshal(scriptMeta{scriptParams: p, ScriptDigest: digest(unitScript)})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(unitScript)
	for _, n := range []string{"rs1", "rs2", "rs3"} {
		r.host(n).On(readScripts).Stdout(hex.EncodeToString(sum[:]) + "\n" + string(meta) + "\n")
	}
	_, err = engine.Plan(context.Background(), r.graph("script.generate"), engine.Options{})
	var pe *ScriptParamsError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "its registration URL is https://old.example.com, the manifest says https://rancher.example.com") {
		t.Fatalf("plan: %v, want a ScriptParamsError naming both URLs", err)
	}
}

// systemHA serves the System HA hosts at the given cluster IPs on a node's
// API.
func systemHA(ips ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		base := "http://" + req.Host + "/v1/projects/1a9"
		w.Header().Set("Content-Type", "application/json")
		switch req.URL.Path {
		case "/ping":
			w.Write([]byte("pong"))
		case "/v1/projects":
			json.NewEncoder(w).Encode(map[string]any{"type": "collection", "data": []any{map[string]any{"id": "1a9", "type": "project", "uuid": "system-ha-1", "state": "active",
				"links": map[string]string{"hosts": base + "/hosts"}}}})
		case "/v1/projects/1a9/hosts":
			var hosts []any
			for i, ip := range ips {
				hosts = append(hosts, map[string]any{"id": "1h" + strconv.Itoa(i+1), "type": "host", "state": "active",
					"ipAddresses": []any{map[string]any{"address": ip, "state": "active"}}})
			}
			json.NewEncoder(w).Encode(map[string]any{"type": "collection", "data": hosts})
		default:
			http.NotFound(w, req)
		}
	})
}

// resizing makes rs1's start record name another size than the manifest's
// (a resize under way, as the re-check after script.generate sees it).
var resizing bool

func rs1Started(started string) string {
	if resizing {
		return strings.Replace(started, `"cluster_size":3`, `"cluster_size":5`, 1)
	}
	return started
}

// Stopping a machine that left the manifest is refused, with the
// arithmetic, when the nodes that keep running would be fewer than a
// quorum; with enough of them running it is planned.
func TestRetireKeepsAQuorum(t *testing.T) {
	setup := func(t *testing.T, rs2, rs3 string) *rig {
		r := newRig(t)
		for _, n := range []string{"rs1", "rs2", "rs3"} {
			r.holdScript(n, unitScript)
		}
		serveOn(t, r.host("rs1"), layout.HAAPIPort, systemHA("10.0.0.11", "10.0.0.12", "10.0.0.14"))
		ownHostKeys(r.host("old node 10.0.0.14"), "old-machine").On(inspectContainer(layout.HA)).Stdout("running rancher/server:v1.0.1\n")
		started := `{"script_digest":"` + digest(unitScript) + `","cluster_size":3}`
		haStartNode(r, "rs1", "running rancher/server:v1.0.1", rs1Started(started), "")
		for n, st := range map[string]string{"rs2": rs2, "rs3": rs3} {
			switch {
			case st == "silent":
				r.fleet.Unreachable(n)
			case st == "absent":
				haStartNode(r, n, st, "", "")
			default:
				haStartNode(r, n, st, started, "")
			}
		}
		return r
	}
	t.Run("a quorum keeps running", func(t *testing.T) {
		r := setup(t, "running rancher/server:v1.0.1", "absent")
		c := planned(t, r.plan(r.graph("ha.retire")), "ha.retire")
		if c.Action != plans.Delete || !strings.Contains(c.Reason, "stop rancher-ha on 10.0.0.14") {
			t.Errorf("%s %q", c.Action, c.Reason)
		}
	})
	t.Run("a resize under way restarts every node: no quorum to keep", func(t *testing.T) {
		resizing = true
		defer func() { resizing = false }()
		r := setup(t, "silent", "absent")
		c := planned(t, r.plan(r.graph("ha.retire")), "ha.retire")
		if c.Action != plans.Delete {
			t.Errorf("%s %q", c.Action, c.Reason)
		}
	})
	t.Run("below a quorum", func(t *testing.T) {
		r := setup(t, "silent", "absent")
		_, err := engine.Plan(context.Background(), r.graph("ha.retire"), engine.Options{})
		var qe *QuorumError
		want := "refusing to stop rancher-ha on 10.0.0.14, which left the manifest: 1 of the 3 nodes would keep running (rs1), and a 3-node cluster needs 2 (its ZooKeeper quorum); rs2 did not answer: bring it back first"
		if !errors.As(err, &qe) || !strings.Contains(err.Error(), want) {
			t.Fatalf("plan: %v\nwant %q", err, want)
		}
	})
}

// An address that left the manifest but answers as a node (the same SSH
// host keys in /etc/ssh, whatever type each connection negotiated; or the
// same verified key when the files cannot be read) is that node, its old
// cluster IP still configured on it: it is neither stopped nor cleaned
// (its rancher-ha is the node's), only its System HA record goes.
func TestDepartedAddressThatIsANode(t *testing.T) {
	readKeys := readHostKeys
	const rs3Keys = "ssh-ed25519 AAAAC3rs3 root@rs3\nssh-rsa AAAAB3rs3 root@rs3\n"
	// The cluster of rs1..rs3 and a System HA host at 10.0.0.14, whose
	// machine answers with the keys given ("" for none readable) and the
	// verified key given.
	setup := func(t *testing.T, files, negotiated string) (*rig, *transporttest.Runner) {
		r := newRig(t)
		for _, n := range []string{"rs1", "rs2", "rs3"} {
			r.holdScript(n, unitScript)
		}
		serveOn(t, r.host("rs1"), layout.HAAPIPort, systemHA("10.0.0.11", "10.0.0.12", "10.0.0.13", "10.0.0.14"))
		old := r.host("old node 10.0.0.14")
		old.SetHostKey(negotiated)
		old.On(readKeys).Stdout(files)
		return r, old
	}
	// leftAlone checks that what ha.prune's apply does on the machine at
	// 10.0.0.14 asks it nothing but its host keys.
	leftAlone := func(t *testing.T, r *rig, old *transporttest.Runner, why string) {
		t.Helper()
		if err := r.steps["ha.prune"].(*haPrune).cleanDeparted(context.Background(), "10.0.0.14"); err != nil {
			t.Fatal(err)
		}
		for _, l := range old.Lines() {
			if !strings.HasPrefix(l, "cat /etc/ssh/") {
				t.Errorf("10.0.0.14, which %s, was asked %q", why, l)
			}
		}
	}
	twins := []struct{ name, files, negotiated string }{
		{"the same key files, another key type negotiated", strings.ReplaceAll(rs3Keys, "root@rs3", "root@old-name"), "SHA256:rsa-of-rs3"},
		{"no key files readable, the same verified key", "", "SHA256:ed25519-of-rs3"},
	}
	for _, tc := range twins {
		t.Run(tc.name, func(t *testing.T) {
			r, old := setup(t, tc.files, tc.negotiated)
			p := r.plan(r.graph("ha.retire", "ha.prune"))
			if c := planned(t, p, "ha.retire"); c.Action != plans.NoOp {
				t.Errorf("ha.retire: %s %q, want no-op: 10.0.0.14 is rs3", c.Action, c.Reason)
			}
			c := planned(t, p, "ha.prune")
			want := []plans.Detail{{Name: "10.0.0.14", Old: "System HA host 1h4 (active)", New: "System HA host removed; the machine at that address is rs3 (the same SSH host keys): nothing removed there"}}
			if c.Action != plans.Delete || !reflect.DeepEqual(want, c.Details) {
				t.Errorf("ha.prune: %s %+v, want delete %+v", c.Action, c.Details, want)
			}
			leftAlone(t, r, old, "is rs3")
		})
	}
	t.Run("a machine of the manifest whose keys cannot be read", func(t *testing.T) {
		// It could be that machine: nothing is stopped or removed there.
		r, old := setup(t, "ssh-ed25519 AAAAC3old root@old\n", "SHA256:ed25519-of-old")
		r.host("rs2").OnFirst(readKeys).Err(errors.New("Process exited with status 255"))
		c := planned(t, r.plan(r.graph("ha.retire", "ha.prune")), "ha.prune")
		if len(c.Details) != 1 || !strings.Contains(c.Details[0].New, "whether it is a machine of the manifest cannot be told: nothing removed there") {
			t.Errorf("ha.prune: %+v, want nothing removed on 10.0.0.14", c.Details)
		}
		leftAlone(t, r, old, "could be rs2")
	})
	t.Run("another machine", func(t *testing.T) {
		r, other := setup(t, "ssh-ed25519 AAAAC3old root@old\n", "SHA256:ed25519-of-old")
		other.On(inspectContainer(layout.HA)).Stdout("absent\n")
		c := planned(t, r.plan(r.graph("ha.prune")), "ha.prune")
		if len(c.Details) != 1 || !strings.Contains(c.Details[0].New, "rancher-ha containers and") {
			t.Errorf("ha.prune of another machine: %+v, want its containers and files removed", c.Details)
		}
	})
}
