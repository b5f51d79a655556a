package resources

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/haplan/haplan/engine"
	"github.com/haplan/haplan/manifests"
	"github.com/haplan/haplan/plans"
)

var update = flag.Bool("update", false, "rewrite the golden plans")

// stateDecoders turn a step kind's observed state, as JSON in a golden
// file, into the state type its Diff takes.
var stateDecoders = map[string]func([]byte) (engine.State, error){
	"db.database":     decodeState[dbDatabaseState],
	"db.grant":        decodeState[dbGrantState],
	"lb.config":       decodeState[lbConfigState],
	"image.pull":      decodeState[imagePullState],
	"bootstrap.run":   decodeState[bootstrapState],
	"script.generate": decodeState[scriptState],
	"bootstrap.stop":  decodeState[bootstrapStopState],
	"ha.start":        decodeState[haStartState],
	"ha.verify":       decodeState[haVerifyState],
	"cert.distribute": decodeState[certState],
	"agent.token":     decodeState[agentTokenState],
	"agent.register":  decodeState[agentRegisterState],
	"agent.prune":     decodeState[pruneState],
	"db.backup":       decodeState[dbBackupState],
	"ha.stop":         decodeState[haStartState],
	"ha.prune":        decodeState[haPruneState],
	"ha.retire":       decodeState[haPruneState],
	"db.prune":        decodeState[dbPruneState],
}

func decodeState[T any](b []byte) (engine.State, error) {
	var v T
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// sections splits a txtar-style file: "-- name --" lines start a section.
func sections(t *testing.T, b []byte) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	name := ""
	for _, line := range strings.SplitAfter(string(b), "\n") {
		trim := strings.TrimSpace(line)
		if strings.HasPrefix(trim, "-- ") && strings.HasSuffix(trim, " --") {
			name = strings.TrimSuffix(strings.TrimPrefix(trim, "-- "), " --")
			out[name] = nil
			continue
		}
		if name != "" {
			out[name] = append(out[name], line...)
		}
	}
	return out
}

// renderGolden is the plan as one line per step in graph order, then
// warnings and the summary: compact enough to review in a diff.
func renderGolden(p *plans.Plan) string {
	var b strings.Builder
	for _, c := range p.Changes {
		mark := c.Action.Symbol()
		if c.Check {
			mark = "?"
		}
		fmt.Fprintf(&b, "%s %s: %s\n", mark, c.Addr, c.Reason)
		for _, d := range c.Details {
			fmt.Fprintf(&b, "    %s: %q -> %q\n", d.Name, d.Old, d.New)
		}
		for _, w := range c.Warnings {
			fmt.Fprintf(&b, "    warning: %s\n", w)
		}
	}
	b.WriteString(p.SummaryLine() + "\n")
	return b.String()
}

// TestGoldenPlans: a manifest and the state observed on the machines give
// exactly the plan in the file.
func TestGoldenPlans(t *testing.T) {
	files, err := filepath.Glob("testdata/golden/*.txtar")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			sec := sections(t, raw)
			dir := t.TempDir()
			for _, f := range []string{"db-password", "db-admin-password"} {
				if err := os.WriteFile(filepath.Join(dir, f), []byte("s3cret-"+f+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			c, ds := manifests.LoadBytes("cluster.yaml", sec["cluster.yaml"], dir)
			if ds.HasErrors() {
				t.Fatalf("manifest: %v", ds.Err())
			}
			steps, err := Compile(c, testEnv(c))
			if err != nil {
				t.Fatal(err)
			}
			g, err := engine.NewGraph(steps)
			if err != nil {
				t.Fatal(err)
			}
			// LBDIGEST stands for the digest of the configuration haplan
			// renders, so golden files survive changes to the template.
			lbDigest := digest((&lbConfig{base: base{env: testEnv(c)}}).render())
			stateJSON := bytes.ReplaceAll(sec["state.json"], []byte(`"LBDIGEST"`), []byte(`"`+lbDigest+`"`))
			var observed map[string]json.RawMessage
			if err := json.Unmarshal(stateJSON, &observed); err != nil {
				t.Fatalf("state.json: %v", err)
			}
			p := &plans.Plan{}
			for _, s := range g.Steps() {
				a := string(s.Addr())
				raw, ok := observed[a]
				if !ok {
					t.Fatalf("state.json has no state for %s", a)
				}
				st, err := stateDecoders[plans.Kind(a)](raw)
				if err != nil {
					t.Fatalf("state of %s: %v", a, err)
				}
				p.Changes = append(p.Changes, s.Diff(st))
				delete(observed, a)
			}
			for a := range observed {
				t.Errorf("state.json names %s, which is not a step of this manifest", a)
			}
			got := renderGolden(p)
			if *update {
				out := strings.Replace(string(raw), "-- plan --\n"+string(sec["plan"]), "-- plan --\n"+got, 1)
				if err := os.WriteFile(file, []byte(out), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if diff := cmp.Diff(string(sec["plan"]), got); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
		})
	}
}
