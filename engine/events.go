package engine

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/haplan/haplan/plans"
)

// Phase says whether an event or error belongs to planning or applying.
type Phase int

// The phases. Diff errors are reported under PhaseProbe: Diff runs as part
// of planning, right after Probe.
const (
	PhaseProbe Phase = iota
	PhaseApply
)

func (p Phase) String() string {
	switch p {
	case PhaseProbe:
		return "probe"
	case PhaseApply:
		return "apply"
	}
	return fmt.Sprintf("phase(%d)", int(p))
}

// MarshalText encodes the phase by name, for JSON-lines views.
func (p Phase) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// EventKind is what happened.
type EventKind int

// The event kinds.
const (
	ProbeStarted     EventKind = iota // a step's Probe began
	ProbeFinished                     // Probe and Diff returned; Err is set on failure, Change on success
	ApplyStarted                      // a step's Apply began
	ProgressReported                  // a step called Progress; Message holds the text
	ApplyFinished                     // Apply succeeded
	ApplyFailed                       // Apply returned Err
	Skipped                           // not run: a dependency failed; Message names it
	NotStarted                        // not run: the walk was stopped or cancelled first
	Waiting                           // a barrier member waits for the rest of its group
)

var kindNames = [...]string{
	"probe_started", "probe_finished", "apply_started", "progress",
	"apply_finished", "apply_failed", "skipped", "not_started", "waiting",
}

func (k EventKind) String() string {
	if k < 0 || int(k) >= len(kindNames) {
		return fmt.Sprintf("event(%d)", int(k))
	}
	return kindNames[k]
}

// MarshalText encodes the kind by name, for JSON-lines views.
func (k EventKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// Event is one thing that happened to one step. Addr is always set.
type Event struct {
	Time    time.Time
	Kind    EventKind
	Addr    Addr
	Host    string
	Phase   Phase
	Change  *plans.Change // the planned change, when known; a copy, never shared
	Message string
	Err     error
	Elapsed time.Duration // since the step's Probe or Apply began; 0 before
}

// Sink receives events. The engine calls it from many goroutines at once,
// so a Sink must be safe for concurrent use (wrap a plain function with
// SerialSink) and should return quickly: a slow sink slows the steps that
// report to it.
type Sink func(Event)

// SerialSink wraps f so that it is called by one goroutine at a time, in
// the order the events are delivered.
func SerialSink(f func(Event)) Sink {
	var mu sync.Mutex
	return func(e Event) {
		mu.Lock()
		defer mu.Unlock()
		f(e)
	}
}

// Options tune Plan and Apply. The zero value is usable.
type Options struct {
	// Parallelism bounds how many Probes (or Applies) run at once. 0 means 10.
	Parallelism int
	// PerHost bounds how many run at once against one Step.Host. Steps with
	// no host are not capped. 0 means 4.
	PerHost int
	// Sink receives events; nil discards them.
	Sink Sink
	// Logger receives debug logs; nil discards them.
	Logger *slog.Logger
	// Stop, when closed, makes Apply start no new step: running steps
	// finish, the rest become NotStarted (the first Ctrl-C). Cancelling the
	// context cancels running steps too (the second). Plan ignores Stop.
	Stop <-chan struct{}
}

const (
	defaultParallelism = 10
	defaultPerHost     = 4
)

func (o Options) withDefaults() Options {
	if o.Parallelism <= 0 {
		o.Parallelism = defaultParallelism
	}
	if o.PerHost <= 0 {
		o.PerHost = defaultPerHost
	}
	if o.Sink == nil {
		o.Sink = func(Event) {}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// reporter is what the engine attaches to the context it hands to one
// step's Probe or Apply, so that Progress knows whom to stamp.
type reporter struct {
	sink   Sink
	addr   Addr
	host   string
	phase  Phase
	change *plans.Change
	start  time.Time
}

type reporterKey struct{}

func (r *reporter) emit(kind EventKind, msg string, err error) {
	now := time.Now()
	e := Event{Time: now, Kind: kind, Addr: r.addr, Host: r.host, Phase: r.phase, Message: msg, Err: err}
	if r.change != nil {
		c := *r.change
		e.Change = &c
	}
	if !r.start.IsZero() {
		e.Elapsed = now.Sub(r.start)
	}
	r.sink(e)
}

// Progress lets a step tell the user what it is doing while its Probe or
// Apply runs, e.g. engine.Progress(ctx, "waiting for %s/ping", url). It emits
// a ProgressReported event.
// The engine stamps the event with the step's address and the time elapsed.
// It does nothing when ctx does not come from the engine (in unit tests of
// a step, for instance). Safe to call from any goroutine the step starts.
func Progress(ctx context.Context, format string, args ...any) {
	r, ok := ctx.Value(reporterKey{}).(*reporter)
	if !ok {
		return
	}
	r.emit(ProgressReported, fmt.Sprintf(format, args...), nil)
}

func withReporter(ctx context.Context, r *reporter) context.Context {
	return context.WithValue(ctx, reporterKey{}, r)
}
