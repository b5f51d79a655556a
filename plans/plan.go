package plans

import (
	"cmp"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Action is what applying a Change does to the world.
type Action int

// The actions, ordered so that sorting by Action groups like with like.
const (
	NoOp    Action = iota // already as declared
	Create                // + something missing is created
	Update                // ~ something present is changed in place
	Replace               // ± something present is removed and made again
	Delete                // - something present is removed
	// Unknown: the step could not be probed (its host did not answer), so
	// what it would do is not known. Apply fails it without trying and
	// skips what depends on it; the next plan probes it again.
	Unknown
)

var actionNames = [...]string{"no-op", "create", "update", "replace", "delete", "unknown"}
var actionSymbols = [...]string{" ", "+", "~", "±", "-", "!"}

// String returns the lower-case name used in JSON and in prose.
func (a Action) String() string {
	if a < 0 || int(a) >= len(actionNames) {
		return fmt.Sprintf("action(%d)", int(a))
	}
	return actionNames[a]
}

// Symbol returns the one-character marker of the text view.
func (a Action) Symbol() string {
	if a < 0 || int(a) >= len(actionSymbols) {
		return "?"
	}
	return actionSymbols[a]
}

// MarshalText encodes the action by name.
func (a Action) MarshalText() ([]byte, error) {
	if a < 0 || int(a) >= len(actionNames) {
		return nil, fmt.Errorf("plans: unknown action %d", int(a))
	}
	return []byte(actionNames[a]), nil
}

// UnmarshalText decodes an action name.
func (a *Action) UnmarshalText(b []byte) error {
	for i, n := range actionNames {
		if n == string(b) {
			*a = Action(i)
			return nil
		}
	}
	return fmt.Errorf("plans: unknown action %q", string(b))
}

// Detail is one attribute of a Change, before and after. When Sensitive is
// set, Old and New hold digests or "(sensitive)", never the value.
type Detail struct {
	Name      string `json:"name"`
	Old       string `json:"old,omitempty"`
	New       string `json:"new,omitempty"`
	Sensitive bool   `json:"sensitive,omitempty"`
	// Diff, for a file, is what changes in it: the hunks of a unified
	// diff ("@@" headers, then "-", "+" and " " lines), lines that may
	// hold a secret masked.
	Diff []string `json:"diff,omitempty"`
}

// Change is the planned outcome of one step.
type Change struct {
	Addr     string   `json:"address"`            // e.g. "image.pull[rs1]"
	Kind     string   `json:"kind"`               // e.g. "image.pull"
	Host     string   `json:"host,omitempty"`     // where it acts; empty for local steps
	Action   Action   `json:"action"`             // what apply does
	Reason   string   `json:"reason,omitempty"`   // one line, why (or why not)
	Details  []Detail `json:"details,omitempty"`  // attribute-level before/after
	Warnings []string `json:"warnings,omitempty"` // findings that need a human but are no change
	// Check marks a verification step: it never counts as a change, and
	// apply runs it when anything it depends on was changed.
	Check bool `json:"check,omitempty"`
	// Unreachable, on an Unknown change, names the machine that did not
	// answer (not always the step's own host: a cluster-wide step reads
	// every node).
	Unreachable string `json:"unreachable,omitempty"`
	// Deferred marks a change whose action is decided when its turn comes:
	// what it depends on could not be read when the plan was made (the
	// cluster not started yet, or its API not answering), so the plan
	// says what it is for, and apply does what the world then needs.
	Deferred bool `json:"deferred,omitempty"`
	// Temporary marks a change to something this run makes and removes
	// again (the bootstrap server of a first install): it is shown, and
	// applied, but not counted as added or destroyed.
	Temporary bool `json:"temporary,omitempty"`
}

// Pending reports whether applying c would change anything (or, for an
// Unknown change, might).
func (c Change) Pending() bool { return !c.Check && c.Action != NoOp }

// Plan is the complete outcome of planning one cluster.
type Plan struct {
	FormatVersion  string    `json:"format_version"`
	HaplanVersion  string    `json:"haplan_version,omitempty"`
	Cluster        string    `json:"cluster"`
	ManifestDigest string    `json:"manifest_digest"`
	Created        time.Time `json:"created"`
	// Partial is set when the plan covers only targeted steps.
	Partial bool `json:"partial,omitempty"`
	// Changes holds one entry per step, in a stable order (topological,
	// ties broken by address), no-ops included.
	Changes []Change `json:"changes"`
	// Probes maps a step address to the SHA-256 of the state it was planned
	// from. Apply of a saved plan re-probes and compares.
	Probes map[string]string `json:"probes"`
}

// FormatVersion is the version of the encoding this package writes.
const FormatVersion = "1"

// Summary counts pending changes by the terraform convention: replaces
// count as one add and one destroy.
func (p *Plan) Summary() (add, change, destroy int) {
	for _, c := range p.Changes {
		if !c.Pending() || c.Temporary {
			continue
		}
		switch c.Action {
		case Create:
			add++
		case Update:
			change++
		case Replace:
			add++
			destroy++
		case Delete:
			destroy++
		}
	}
	return add, change, destroy
}

// Unknown returns the changes whose step could not be probed, in plan order.
func (p *Plan) Unknown() []Change {
	var out []Change
	for _, c := range p.Changes {
		if c.Action == Unknown {
			out = append(out, c)
		}
	}
	return out
}

// HasChanges reports whether applying the plan would change anything.
func (p *Plan) HasChanges() bool {
	for _, c := range p.Changes {
		if c.Pending() {
			return true
		}
	}
	return false
}

// Pending returns the changes that apply would carry out, in plan order.
func (p *Plan) Pending() []Change {
	var out []Change
	for _, c := range p.Changes {
		if c.Pending() {
			out = append(out, c)
		}
	}
	return out
}

// Change returns the change for a step address.
func (p *Plan) Change(addr string) (Change, bool) {
	for _, c := range p.Changes {
		if c.Addr == addr {
			return c, true
		}
	}
	return Change{}, false
}

// Warnings returns every warning in the plan, prefixed by its step address.
func (p *Plan) Warnings() []string {
	var out []string
	for _, c := range p.Changes {
		for _, w := range c.Warnings {
			out = append(out, c.Addr+": "+w)
		}
	}
	return out
}

// Drift describes one step whose probed state differs between two plans.
type Drift struct {
	Addr     string
	Was, Now string // probe digests; empty when the step is absent
}

func (d Drift) String() string {
	switch {
	case d.Was == "":
		return d.Addr + ": not in the saved plan"
	case d.Now == "":
		return d.Addr + ": no longer part of the cluster"
	default:
		return d.Addr + ": state changed since the plan was made"
	}
}

// Stale compares a saved plan with a fresh one of the same manifest and
// returns every step whose probed state moved, sorted by address. An empty
// result means the saved plan still describes the world.
func Stale(saved, fresh *Plan) []Drift {
	var out []Drift
	for addr, was := range saved.Probes {
		now, ok := fresh.Probes[addr]
		if !ok {
			out = append(out, Drift{Addr: addr, Was: was})
			continue
		}
		if now != was {
			out = append(out, Drift{Addr: addr, Was: was, Now: now})
		}
	}
	for addr, now := range fresh.Probes {
		if _, ok := saved.Probes[addr]; !ok {
			out = append(out, Drift{Addr: addr, Now: now})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Addr < out[j].Addr })
	return out
}

// SummaryLine is the closing line of the text view.
func (p *Plan) SummaryLine() string {
	unknown := p.Unknown()
	hosts := map[string]bool{}
	var names []string
	for _, c := range unknown {
		h := cmp.Or(c.Unreachable, c.Host, c.Addr)
		if !hosts[h] {
			hosts[h] = true
			names = append(names, h)
		}
	}
	sort.Strings(names)
	notProbed := ""
	if len(unknown) > 0 {
		notProbed = fmt.Sprintf(" %d %s not probed (%s did not answer): apply will skip %s.",
			len(unknown), pluralize(len(unknown), "step", "steps"), strings.Join(names, ", "), pluralize(len(unknown), "it", "them"))
	}
	var temp []string
	for _, c := range p.Changes {
		if c.Pending() && c.Temporary {
			temp = append(temp, c.Addr)
		}
	}
	temporary := ""
	if len(temp) > 0 {
		temporary = fmt.Sprintf(" Not counted: %s, temporary (made and removed again by this run).", strings.Join(temp, " and "))
	}
	a, c, d := p.Summary()
	if a+c+d == 0 && len(temp) == 0 {
		if len(unknown) > 0 {
			return "No changes found on the machines that answered." + notProbed
		}
		return "No changes. The cluster matches the manifest."
	}
	return fmt.Sprintf("Plan: %d to add, %d to change, %d to destroy.", a, c, d) + temporary + notProbed
}

func pluralize(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// Kind returns the kind part of an address: "image.pull[rs1]" -> "image.pull".
func Kind(addr string) string {
	if i := strings.IndexByte(addr, '['); i >= 0 {
		return addr[:i]
	}
	return addr
}
