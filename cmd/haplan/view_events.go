package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/haplan/haplan/engine"
	"github.com/haplan/haplan/internal/termsafe"
	"github.com/haplan/haplan/plans"
)

// eventMode is how engine events are shown.
type eventMode int

const (
	eventsPlain eventMode = iota // one timestamped line per event (CI logs)
	eventsJSON                   // one JSON object per line (machines)
	eventsLive                   // a refreshed view of running steps (terminals)
)

// quietAfter is how long a running step may go without an event before the
// plain view says it is still running: a 15-minute wait must never look hung.
const quietAfter = 10 * time.Second

// eventView renders engine events. Its methods are safe for concurrent use:
// the engine delivers events from many goroutines, and a ticker goroutine
// refreshes the live view and reports quiet steps.
type eventView struct {
	mu   sync.Mutex
	w    io.Writer
	mode eventMode
	pal  palette
	// quietProbes hides the routine probe lines of a plan in plain mode;
	// failures, progress and quiet-step notices are still shown.
	quietProbes bool
	now         func() time.Time

	running map[engine.Addr]*runningStep
	drawn   int // lines of the live region currently on screen
	err     error

	stop chan struct{}
	done chan struct{}
}

type runningStep struct {
	phase   engine.Phase
	host    string
	start   time.Time
	last    time.Time // last event or notice, for the quiet check
	message string    // latest progress message
}

type eventViewOptions struct {
	Mode        eventMode
	Color       bool
	QuietProbes bool
	// Now is the clock; nil means time.Now. Tests pass a fixed clock.
	Now func() time.Time
}

func newEventView(w io.Writer, o eventViewOptions) *eventView {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	return &eventView{
		w: w, mode: o.Mode, pal: palette(o.Color), quietProbes: o.QuietProbes, now: now,
		running: map[engine.Addr]*runningStep{},
	}
}

// start launches the ticker that refreshes the live view and reports quiet
// steps, about once a second. Stop it with close.
func (v *eventView) start() {
	if v.mode == eventsJSON || v.stop != nil {
		return
	}
	v.stop, v.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(v.done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-v.stop:
				return
			case <-t.C:
				v.tick()
			}
		}
	}()
}

// close stops the ticker and clears the live region. It returns the first
// write error, if any.
func (v *eventView) close() error {
	if v.stop != nil {
		close(v.stop)
		<-v.done
		v.stop = nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.clearLive()
	return v.err
}

func (v *eventView) handle(e engine.Event) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.track(e)
	switch v.mode {
	case eventsJSON:
		v.writeJSON(e)
	case eventsLive:
		v.clearLive()
		if line, ok := v.liveLine(e); ok {
			v.write(line + "\n")
		}
		v.drawLive()
	default:
		if line, ok := v.plainLine(e); ok {
			v.write(e.Time.UTC().Format(time.RFC3339) + " " + line + "\n")
		}
	}
}

// track keeps the set of running steps up to date.
func (v *eventView) track(e engine.Event) {
	switch e.Kind {
	case engine.ProbeStarted, engine.ApplyStarted:
		t := e.Time
		if t.IsZero() {
			t = v.now()
		}
		v.running[e.Addr] = &runningStep{phase: e.Phase, host: e.Host, start: t.Add(-e.Elapsed), last: t}
	case engine.ProgressReported, engine.Waiting:
		if r := v.running[e.Addr]; r != nil {
			r.last, r.message = e.Time, e.Message
		}
	default:
		delete(v.running, e.Addr)
	}
}

// plainLine is the text after the timestamp, e.g.
// "apply  image.pull[rs1] started". ok is false for events the view hides.
func (v *eventView) plainLine(e engine.Event) (string, bool) {
	text := eventText(e)
	if v.quietProbes && e.Phase == engine.PhaseProbe {
		switch {
		case e.Kind == engine.ProbeStarted, e.Kind == engine.ProbeFinished && e.Err == nil:
			return "", false
		}
	}
	return fmt.Sprintf("%-5s  %s %s", e.Phase, e.Addr, text), true
}

// eventText says what happened, without address or time.
func eventText(e engine.Event) string {
	switch e.Kind {
	case engine.ProbeStarted:
		return "probing"
	case engine.ProbeFinished:
		if e.Err != nil {
			return fmt.Sprintf("probe failed after %s: %s", fmtDuration(e.Elapsed), oneLine(e.Err.Error()))
		}
		if e.Change != nil && e.Change.Pending() {
			return fmt.Sprintf("probed in %s: %s %s", fmtDuration(e.Elapsed), e.Change.Action, oneLine(e.Change.Reason))
		}
		return fmt.Sprintf("probed in %s: up to date", fmtDuration(e.Elapsed))
	case engine.ApplyStarted:
		return "started"
	case engine.ProgressReported:
		return fmt.Sprintf("%s (%s)", oneLine(e.Message), fmtDuration(e.Elapsed))
	case engine.ApplyFinished:
		return "done in " + fmtDuration(e.Elapsed)
	case engine.ApplyFailed:
		msg := "error"
		if e.Err != nil {
			msg = oneLine(e.Err.Error())
		}
		return fmt.Sprintf("FAILED after %s: %s", fmtDuration(e.Elapsed), msg)
	case engine.Skipped:
		return "skipped: " + orDefault(e.Message, "upstream failed")
	case engine.NotStarted:
		return "not started: " + orDefault(e.Message, "interrupted")
	case engine.Waiting:
		return "waiting: " + orDefault(e.Message, "for the rest of its barrier group")
	}
	return e.Kind.String() + " " + oneLine(e.Message)
}

func orDefault(s, def string) string {
	if s = oneLine(s); s != "" {
		return s
	}
	return def
}

// tick reports quiet steps (plain mode) or redraws the elapsed times (live
// mode). The ticker calls it about once a second; tests call it directly.
func (v *eventView) tick() {
	v.mu.Lock()
	defer v.mu.Unlock()
	now := v.now()
	switch v.mode {
	case eventsLive:
		v.clearLive()
		v.drawLive()
	case eventsPlain:
		for _, a := range v.runningAddrs() {
			r := v.running[a]
			if now.Sub(r.last) < quietAfter {
				continue
			}
			r.last = now
			line := fmt.Sprintf("%s %-5s  %s still running (%s)", now.UTC().Format(time.RFC3339), r.phase, a, fmtDuration(now.Sub(r.start)))
			if r.message != "" {
				line += ": " + oneLine(r.message)
			}
			v.write(line + "\n")
		}
	}
}

func (v *eventView) runningAddrs() []engine.Addr {
	out := make([]engine.Addr, 0, len(v.running))
	for a := range v.running {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// liveLine is the permanent line a finished step collapses to.
func (v *eventView) liveLine(e engine.Event) (string, bool) {
	switch e.Kind {
	case engine.ApplyFinished:
		return v.pal.wrap(ansiGreen, "✓") + " " + string(e.Addr) + " " + v.pal.wrap(ansiDim, fmtDuration(e.Elapsed)), true
	case engine.ApplyFailed:
		return v.pal.wrap(ansiRed, "✗ "+string(e.Addr)+" "+eventText(e)), true
	case engine.Skipped, engine.NotStarted:
		return v.pal.wrap(ansiYellow, "- "+string(e.Addr)+" "+eventText(e)), true
	case engine.ProbeFinished:
		if e.Err != nil {
			return v.pal.wrap(ansiRed, "✗ "+string(e.Addr)+" "+eventText(e)), true
		}
	}
	return "", false
}

// drawLive writes the running steps, one line each, with elapsed time and
// latest progress message. At most maxLive lines, so the region stays on
// screen; the rest are counted.
func (v *eventView) drawLive() {
	const maxLive = 12
	addrs := v.runningAddrs()
	if len(addrs) == 0 {
		return
	}
	now := v.now()
	var b strings.Builder
	n := 0
	for i, a := range addrs {
		if i == maxLive {
			fmt.Fprintf(&b, "  … and %d more running\n", len(addrs)-maxLive)
			n++
			break
		}
		r := v.running[a]
		line := fmt.Sprintf("  %s %s %s", v.pal.wrap(ansiCyan, "•"), a, v.pal.wrap(ansiDim, fmtDuration(now.Sub(r.start))))
		if r.message != "" {
			line += "  " + oneLine(r.message)
		}
		b.WriteString(line + "\n")
		n++
	}
	v.write(b.String())
	v.drawn = n
}

// clearLive moves the cursor back over the live region and erases it.
func (v *eventView) clearLive() {
	if v.mode != eventsLive || v.drawn == 0 {
		return
	}
	v.write(fmt.Sprintf("\x1b[%dA\x1b[J", v.drawn))
	v.drawn = 0
}

// jsonEvent is the JSON-lines form of an engine event.
type jsonEvent struct {
	Time      time.Time     `json:"time"`
	Kind      string        `json:"kind"`
	Address   string        `json:"address"`
	Host      string        `json:"host,omitempty"`
	Phase     string        `json:"phase"`
	Message   string        `json:"message,omitempty"`
	Error     string        `json:"error,omitempty"`
	ElapsedMS int64         `json:"elapsed_ms,omitempty"`
	Change    *plans.Change `json:"change,omitempty"`
}

func (v *eventView) writeJSON(e engine.Event) {
	je := jsonEvent{
		Time: e.Time.UTC(), Kind: e.Kind.String(), Address: string(e.Addr), Host: e.Host,
		Phase: e.Phase.String(), Message: e.Message, ElapsedMS: e.Elapsed.Milliseconds(), Change: e.Change,
	}
	if e.Err != nil {
		je.Error = e.Err.Error()
	}
	b, err := json.Marshal(je)
	if err != nil {
		v.err = fmt.Errorf("encode event: %w", err)
		return
	}
	v.write(string(termsafe.JSON(b)) + "\n")
}

func (v *eventView) write(s string) {
	if v.err != nil {
		return
	}
	if _, err := io.WriteString(v.w, s); err != nil {
		v.err = fmt.Errorf("write progress: %w", err)
	}
}

// fmtDuration rounds for people: tenths of a second under a minute, whole
// seconds above ("2m10s").
func fmtDuration(d time.Duration) string {
	if d < time.Minute {
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}
