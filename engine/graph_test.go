package engine

import (
	"errors"
	"math/rand/v2"
	"path"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/haplan/haplan/plans"
)

func TestNewGraphErrors(t *testing.T) {
	tests := []struct {
		name    string
		steps   []Step
		is      error
		message string // the whole error text
	}{
		{
			name:    "duplicate address",
			steps:   []Step{step("a", plans.NoOp), step("b", plans.NoOp), step("a", plans.NoOp)},
			is:      ErrDuplicateAddr,
			message: `duplicate step address "a"`,
		},
		{
			name:    "unknown dependency names both",
			steps:   []Step{step("a", plans.NoOp, "nope"), step("b", plans.NoOp, "a")},
			is:      ErrUnknownDep,
			message: `step "a" depends on unknown step "nope"`,
		},
		{
			name:    "all problems joined",
			steps:   []Step{step("a", plans.NoOp, "x"), step("a", plans.NoOp), step("b", plans.NoOp, "y")},
			is:      ErrUnknownDep,
			message: "duplicate step address \"a\"\nstep \"a\" depends on unknown step \"x\"\nstep \"b\" depends on unknown step \"y\"",
		},
		{
			name: "cycle named in dependency order from its smallest address",
			steps: []Step{
				step("c", plans.NoOp, "a"), step("b", plans.NoOp, "c"), step("a", plans.NoOp, "b"),
				step("z", plans.NoOp, "a"),
			},
			is:      ErrCycle,
			message: "dependency cycle: a -> b -> c -> a",
		},
		{
			name:    "self dependency",
			steps:   []Step{step("ok", plans.NoOp), step("me", plans.NoOp, "ok", "me")},
			is:      ErrCycle,
			message: "dependency cycle: me -> me",
		},
		{
			name: "barrier member depends on its own group through another step",
			steps: []Step{
				barrierFake{step("ha.start[rs1]", plans.Create), "ha"},
				step("ha.wait", plans.Create, "ha.start[rs1]"),
				barrierFake{step("ha.start[rs2]", plans.Create, "ha.wait"), "ha"},
			},
			is:      ErrBarrierOrder,
			message: `barrier group "ha" cannot start together: barrier(ha) -> ha.wait -> barrier(ha)`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := NewGraph(tt.steps)
			if err == nil {
				t.Fatalf("NewGraph succeeded with %d steps, want error", g.Len())
			}
			if !errors.Is(err, tt.is) {
				t.Errorf("errors.Is(err, %v) = false; err: %v", tt.is, err)
			}
			var ge *GraphError
			if !errors.As(err, &ge) {
				t.Errorf("error is not a *GraphError: %T", err)
			}
			if diff := cmp.Diff(tt.message, err.Error()); diff != "" {
				t.Errorf("message (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNewGraphAcceptsBarrierGroupWithSharedDeps(t *testing.T) {
	mustGraph(t,
		step("db", plans.Create),
		barrierFake{step("ha.start[rs1]", plans.Create, "db"), "ha"},
		barrierFake{step("ha.start[rs2]", plans.Create, "db"), "ha"},
		step("ha.verify", plans.NoOp, "ha.start[rs1]", "ha.start[rs2]"),
	)
}

func TestStepsTopologicalAndStable(t *testing.T) {
	// d depends on b and c, which depend on a; e and f are free; a duplicate
	// dependency is harmless.
	base := []*fake{
		step("d", plans.NoOp, "c", "b", "b"),
		step("b", plans.NoOp, "a"),
		step("c", plans.NoOp, "a"),
		step("f", plans.NoOp),
		step("a", plans.NoOp),
		step("e", plans.NoOp),
	}
	want := []Addr{"a", "b", "c", "d", "e", "f"}
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 20 {
		steps := make([]Step, len(base))
		for j, k := range r.Perm(len(base)) {
			steps[j] = base[k]
		}
		g := mustGraph(t, steps...)
		if diff := cmp.Diff(want, addrs(g.Steps())); diff != "" {
			t.Fatalf("shuffle %d: Steps (-want +got):\n%s", i, diff)
		}
	}
	g := mustGraph(t, base[0], base[1], base[2], base[3], base[4], base[5])
	if diff := cmp.Diff([]Addr{"b", "c"}, g.Deps("d")); diff != "" {
		t.Errorf("Deps(d) (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]Addr{"b", "c"}, g.Dependents("a")); diff != "" {
		t.Errorf("Dependents(a) (-want +got):\n%s", diff)
	}
	if s, ok := g.Step("e"); !ok || s.Addr() != "e" {
		t.Errorf("Step(e) = %v, %v", s, ok)
	}
	if _, ok := g.Step("zz"); ok {
		t.Error("Step(zz) found a step")
	}
}

func TestStepsLexicallySmallestReadyFirst(t *testing.T) {
	// z is ready at once but sorts last; b becomes ready only after a.
	g := mustGraph(t, step("z", plans.NoOp), step("a", plans.NoOp), step("b", plans.NoOp, "a"))
	if diff := cmp.Diff([]Addr{"a", "b", "z"}, addrs(g.Steps())); diff != "" {
		t.Errorf("Steps (-want +got):\n%s", diff)
	}
}

func clusterSteps() []Step {
	return []Step{
		step("db.database", plans.NoOp),
		step("cert.ca", plans.NoOp),
		step("cert.distribute[rs1]", plans.NoOp, "cert.ca"),
		step("cert.distribute[rs2]", plans.NoOp, "cert.ca"),
		step("image.pull[rs1]", plans.NoOp),
		step("image.pull[rs2]", plans.NoOp),
		step("ha.start[rs1]", plans.NoOp, "db.database", "cert.distribute[rs1]", "image.pull[rs1]"),
		step("ha.start[rs2]", plans.NoOp, "db.database", "cert.distribute[rs2]", "image.pull[rs2]"),
		step("ha.verify", plans.NoOp, "ha.start[rs1]", "ha.start[rs2]"),
	}
}

func TestTarget(t *testing.T) {
	g := mustGraph(t, clusterSteps()...)
	tests := []struct {
		name     string
		patterns []string
		want     []Addr
	}{
		{"glob on the host", []string{"cert.distribute[*]"}, []Addr{"cert.ca", "cert.distribute[rs1]", "cert.distribute[rs2]"}},
		{"one host pulls its deps only", []string{"ha.start[rs2]"}, []Addr{"cert.ca", "cert.distribute[rs2]", "db.database", "image.pull[rs2]", "ha.start[rs2]"}},
		{"several patterns, overlapping", []string{"image.pull[rs1]", "image.*"}, []Addr{"image.pull[rs1]", "image.pull[rs2]"}},
		{"question mark", []string{"image.pull[rs?]"}, []Addr{"image.pull[rs1]", "image.pull[rs2]"}},
		{"everything", []string{"ha.verify"}, addrs(g.Steps())},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub, err := g.Target(tt.patterns)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, addrs(sub.Steps())); diff != "" {
				t.Errorf("Target(%q) (-want +got):\n%s", tt.patterns, diff)
			}
		})
	}
}

func TestTargetErrors(t *testing.T) {
	g := mustGraph(t, clusterSteps()...)
	tests := []struct {
		name     string
		patterns []string
		is       error
		message  string
	}{
		{"no match", []string{"ha.start[rs1]", "ha.strat[*]"}, ErrNoMatch, `target "ha.strat[*]": target matches no step (did you mean "ha.start[*]"?)`},
		{"bad pattern", []string{`ha.start\`}, path.ErrBadPattern, `target "ha.start\\": syntax error in pattern`},
		{"brackets are literal", []string{"ha.start[rs]"}, ErrNoMatch, `target "ha.start[rs]": target matches no step (ha.start steps are on rs1, rs2)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := g.Target(tt.patterns)
			if !errors.Is(err, tt.is) {
				t.Fatalf("Target(%q) error = %v, want %v", tt.patterns, err, tt.is)
			}
			if err.Error() != tt.message {
				t.Errorf("message = %q, want %q", err.Error(), tt.message)
			}
		})
	}
}

func TestDOT(t *testing.T) {
	g := mustGraph(t,
		step("ha.start[rs1]", plans.NoOp, "db.database", "image.pull[rs1]"),
		step("image.pull[rs1]", plans.NoOp),
		step("db.database", plans.NoOp),
	)
	want := strings.Join([]string{
		`digraph haplan {`,
		`	rankdir=LR;`,
		`	"db.database";`,
		`	"image.pull[rs1]";`,
		`	"ha.start[rs1]";`,
		`	"db.database" -> "ha.start[rs1]";`,
		`	"image.pull[rs1]" -> "ha.start[rs1]";`,
		`}`,
		``,
	}, "\n")
	if diff := cmp.Diff(want, g.DOT()); diff != "" {
		t.Errorf("DOT (-want +got):\n%s", diff)
	}
}

func TestMermaid(t *testing.T) {
	g := mustGraph(t,
		step("ha.start[rs1]", plans.NoOp, "db.database", "db_database"),
		step("db.database", plans.NoOp),
		step("db_database", plans.NoOp),
		step("end", plans.NoOp, "ha.start[rs1]"),
	)
	want := strings.Join([]string{
		`flowchart LR`,
		`    db_database["db.database"]`,
		`    db_database_2["db_database"]`,
		`    ha_start_rs1["ha.start[rs1]"]`,
		`    n_end["end"]`,
		`    db_database --> ha_start_rs1`,
		`    db_database_2 --> ha_start_rs1`,
		`    ha_start_rs1 --> n_end`,
		``,
	}, "\n")
	if diff := cmp.Diff(want, g.Mermaid()); diff != "" {
		t.Errorf("Mermaid (-want +got):\n%s", diff)
	}
}

func TestTargetKeepsBarrierGroupsWhole(t *testing.T) {
	pull1, pull2 := step("pull[1]", plans.Create), step("pull[2]", plans.Create)
	g := mustGraph(t, pull1, pull2,
		barrierFake{fake: step("start[1]", plans.Create, "pull[1]"), group: "start"},
		barrierFake{fake: step("start[2]", plans.Create, "pull[2]"), group: "start"},
		step("other", plans.Create))
	sub, err := g.Target([]string{"start[1]"})
	if err != nil {
		t.Fatal(err)
	}
	want := []Addr{"pull[1]", "pull[2]", "start[1]", "start[2]"}
	if diff := cmp.Diff(want, addrs(sub.Steps())); diff != "" {
		t.Errorf("targeted steps (-want +got):\n%s", diff)
	}
}
