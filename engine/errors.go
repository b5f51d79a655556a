package engine

import (
	"errors"
	"fmt"
	"strings"

	"github.com/haplan/haplan/plans"
)

// Sentinels carried by *GraphError, for errors.Is. None of them is ever
// worth retrying: each describes a mistake in the steps a caller built.
var (
	// ErrDuplicateAddr: two steps share an address.
	ErrDuplicateAddr = errors.New("duplicate step address")
	// ErrUnknownDep: a step depends on an address that no step has.
	ErrUnknownDep = errors.New("dependency on an unknown step")
	// ErrCycle: the dependencies form a cycle.
	ErrCycle = errors.New("dependency cycle")
	// ErrBarrierOrder: the members of a barrier group cannot all be ready
	// at the same time, because one depends (possibly through other steps
	// or another group) on a member of its own group.
	ErrBarrierOrder = errors.New("barrier group depends on itself")
	// ErrNoMatch: a -target pattern matches no step.
	ErrNoMatch = errors.New("target matches no step")
)

// ErrInterrupted is joined into Apply's error when some steps did not start
// because Options.Stop was closed or the context was cancelled. A re-run
// (new plan, new apply) resumes: the engine probes live state.
var ErrInterrupted = errors.New("apply interrupted: some steps did not start")

// GraphError describes a graph that cannot be built or targeted.
type GraphError struct {
	Err error // one of the Err* sentinels above
	// Addrs are the steps involved: the duplicate address; the step and
	// its unknown dependency; the cycle in dependency order with its first
	// address repeated at the end; the barrier group's offending path.
	Addrs []Addr
	// Group names the barrier group of an ErrBarrierOrder.
	Group string
	// Pattern is the target pattern of an ErrNoMatch or a bad pattern.
	Pattern string
	// Hint, for an ErrNoMatch, says what the pattern could have meant.
	Hint string
}

func (e *GraphError) Error() string {
	switch {
	case errors.Is(e.Err, ErrDuplicateAddr) && len(e.Addrs) > 0:
		return fmt.Sprintf("duplicate step address %q", e.Addrs[0])
	case errors.Is(e.Err, ErrUnknownDep) && len(e.Addrs) > 1:
		return fmt.Sprintf("step %q depends on unknown step %q", e.Addrs[0], e.Addrs[1])
	case errors.Is(e.Err, ErrCycle):
		return "dependency cycle: " + joinAddrs(e.Addrs, " -> ")
	case errors.Is(e.Err, ErrBarrierOrder):
		return fmt.Sprintf("barrier group %q cannot start together: %s", e.Group, joinAddrs(e.Addrs, " -> "))
	case e.Pattern != "" && e.Hint != "":
		return fmt.Sprintf("target %q: %v (%s)", e.Pattern, e.Err, e.Hint)
	case e.Pattern != "":
		return fmt.Sprintf("target %q: %v", e.Pattern, e.Err)
	default:
		return fmt.Sprintf("graph: %v", e.Err)
	}
}

func (e *GraphError) Unwrap() error { return e.Err }

// StepError is the failure of one step's Probe, Diff or Apply.
type StepError struct {
	Addr  Addr
	Host  string // empty for local steps
	Phase Phase
	Err   error
}

func (e *StepError) Error() string {
	if e.Host != "" {
		return fmt.Sprintf("%s %s on %s: %v", e.Phase, e.Addr, e.Host, e.Err)
	}
	return fmt.Sprintf("%s %s: %v", e.Phase, e.Addr, e.Err)
}

func (e *StepError) Unwrap() error { return e.Err }

// PlanMismatchError is returned by Apply, before anything runs, when the
// plan and the graph do not describe the same steps.
type PlanMismatchError struct {
	Missing   []Addr // in the graph, not in the plan
	Extra     []Addr // in the plan, not in the graph
	Duplicate []Addr // more than once in the plan
}

func (e *PlanMismatchError) Error() string {
	var parts []string
	if len(e.Missing) > 0 {
		parts = append(parts, "not in the plan: "+joinAddrs(e.Missing, ", "))
	}
	if len(e.Extra) > 0 {
		parts = append(parts, "not in the graph: "+joinAddrs(e.Extra, ", "))
	}
	if len(e.Duplicate) > 0 {
		parts = append(parts, "planned twice: "+joinAddrs(e.Duplicate, ", "))
	}
	return "plan does not match the steps: " + strings.Join(parts, "; ")
}

func joinAddrs(as []Addr, sep string) string {
	ss := make([]string, len(as))
	for i, a := range as {
		ss[i] = string(a)
	}
	return strings.Join(ss, sep)
}

// Unreachable is implemented by errors that mean a machine did not answer
// (a connection that could not be made, was refused at login or was lost).
// A probe failing with one does not fail the plan: the step becomes an
// Unknown change, so one host out of many that is down is reported, and
// the rest of the cluster is still planned and applied. The engine knows
// no transport: the transport's error types carry the method.
type Unreachable interface {
	error
	// UnreachableHost names the machine that did not answer.
	UnreachableHost() string
}

// IsUnreachable reports whether err (or an error it wraps) says a machine
// did not answer, and which.
func IsUnreachable(err error) (string, bool) {
	var u Unreachable
	if errors.As(err, &u) {
		return u.UnreachableHost(), true
	}
	return "", false
}

// NotProbedError fails a step whose change is Unknown: it was not probed,
// so apply does not know what to do and does not try.
type NotProbedError struct {
	Reason string // the plan's reason: why it could not be probed
}

func (e *NotProbedError) Error() string {
	return "not applied: it could not be probed when the plan was made (" + e.Reason + "); run haplan plan again once its host answers"
}

// DriftError fails a step whose world changed between the plan and its
// turn in the apply so that it now needs another kind of action than the
// one planned (and approved): planned to copy the cluster's script, but no
// node holds one any more. Nothing is changed; a new plan shows what to do.
type DriftError struct {
	Planned, Now plans.Change
}

func (e *DriftError) Error() string {
	return fmt.Sprintf("not applied: the world changed since the plan (planned: %s %s; now: %s %s); run haplan plan again",
		e.Planned.Action.Symbol(), e.Planned.Reason, e.Now.Action.Symbol(), e.Now.Reason)
}
