package engine

import (
	"fmt"
	"strings"
	"time"

	"github.com/haplan/haplan/plans"
)

// Status is how one step ended in an Apply.
type Status int

// The statuses.
const (
	StatusUnchanged  Status = iota // nothing to do: no pending change, or a check with nothing changed upstream
	StatusApplied                  // Apply ran and succeeded (for a check: the check passed)
	StatusFailed                   // Apply ran and returned an error
	StatusSkipped                  // not run because a dependency (or a barrier peer's) failed
	StatusNotStarted               // not run because the walk was stopped or cancelled first
)

var statusNames = [...]string{"unchanged", "applied", "failed", "skipped", "not started"}

func (s Status) String() string {
	if s < 0 || int(s) >= len(statusNames) {
		return fmt.Sprintf("status(%d)", int(s))
	}
	return statusNames[s]
}

// MarshalText encodes the status by name.
func (s Status) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// StepResult is the outcome of one step.
type StepResult struct {
	Addr   Addr
	Host   string
	Status Status
	Change plans.Change // as planned
	Err    error        // the *StepError of a Failed step
	// Cause is the step whose failure made this one Skipped.
	Cause   Addr
	Elapsed time.Duration // time spent in Apply
}

// Result is the outcome of an Apply: one entry per step, in graph order.
type Result struct {
	Steps []StepResult
}

// Step returns the result of the step with address a.
func (r *Result) Step(a Addr) (StepResult, bool) {
	for _, s := range r.Steps {
		if s.Addr == a {
			return s, true
		}
	}
	return StepResult{}, false
}

// Summary counts steps by status.
type Summary struct {
	Applied, Unchanged, Failed, Skipped, NotStarted int
}

// Summary counts the steps of r by status.
func (r *Result) Summary() Summary {
	var s Summary
	for _, st := range r.Steps {
		switch st.Status {
		case StatusApplied:
			s.Applied++
		case StatusUnchanged:
			s.Unchanged++
		case StatusFailed:
			s.Failed++
		case StatusSkipped:
			s.Skipped++
		case StatusNotStarted:
			s.NotStarted++
		}
	}
	return s
}

// String reads like "3 applied, 5 unchanged, 1 failed, 2 skipped (upstream failed)";
// zero counts other than applied and unchanged are left out.
func (s Summary) String() string {
	parts := []string{fmt.Sprintf("%d applied", s.Applied), fmt.Sprintf("%d unchanged", s.Unchanged)}
	if s.Failed > 0 {
		parts = append(parts, fmt.Sprintf("%d failed", s.Failed))
	}
	if s.Skipped > 0 {
		parts = append(parts, fmt.Sprintf("%d skipped (upstream failed)", s.Skipped))
	}
	if s.NotStarted > 0 {
		parts = append(parts, fmt.Sprintf("%d not started (interrupted)", s.NotStarted))
	}
	return strings.Join(parts, ", ")
}
