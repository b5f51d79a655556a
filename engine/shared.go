package engine

import (
	"context"
	"sync"
	"time"
)

// probeMemo holds the reads that the probes of one Plan share.
type probeMemo struct {
	mu      sync.Mutex
	entries map[string]*Flight
}

// Flight is one read that several callers share: the caller that made it
// runs the read and ends it with Finish; the others Await it.
type Flight struct {
	done    chan struct{}
	started time.Time
	at      time.Time // when it finished
	val     any
	err     error
}

// NewFlight is a read in flight, started now.
func NewFlight() *Flight { return &Flight{done: make(chan struct{}), started: time.Now()} }

// Started is when the read began.
func (f *Flight) Started() time.Time { return f.started }

// Finish records the read's result and releases the callers awaiting it.
func (f *Flight) Finish(v any, err error) {
	f.val, f.err, f.at = v, err, time.Now()
	close(f.done)
}

// Finished reports whether the read has ended, and when.
func (f *Flight) Finished() (time.Time, bool) {
	select {
	case <-f.done:
		return f.at, true
	default:
		return time.Time{}, false
	}
}

// Await waits for the read to finish, or for ctx to end, and returns its
// result.
func Await[T any](ctx context.Context, f *Flight) (T, error) {
	select {
	case <-f.done: // a finished read wins over a context that ended too
	default:
		select {
		case <-f.done:
		case <-ctx.Done():
			var zero T
			return zero, ctx.Err()
		}
	}
	v, _ := f.val.(T)
	return v, f.err
}

type memoKey struct{}

// Shared runs read once per Plan for each key and hands every probe of that
// Plan the same result (value or error), so that steps reading the same
// facts (the script on every node, the cluster CA) cost one remote read, not
// one per step. Callers that arrive while the read runs wait for it.
//
// Outside a Plan's probes (during Apply, or in a unit test of a step) read
// runs every time: Apply must see the world as its dependencies left it.
// read gets the context of the first caller; it must be read-only.
func Shared[T any](ctx context.Context, key string, read func(context.Context) (T, error)) (T, error) {
	m, ok := ctx.Value(memoKey{}).(*probeMemo)
	if !ok {
		return read(ctx)
	}
	m.mu.Lock()
	e, found := m.entries[key]
	if !found {
		e = NewFlight()
		m.entries[key] = e
	}
	m.mu.Unlock()
	if !found {
		v, err := read(ctx)
		e.Finish(v, err)
	}
	return Await[T](ctx, e)
}

func withProbeMemo(ctx context.Context) context.Context {
	return context.WithValue(ctx, memoKey{}, &probeMemo{entries: map[string]*Flight{}})
}
