package resources

import (
	"context"
	"sync"
	"time"

	"github.com/haplan/haplan/engine"
)

// Reads of the cluster's facts that many steps share (every node's script,
// the cluster CA) go through one mechanism, sharedRead, and each says how
// fresh it must be. There is no other cache in this package.
type freshness int

const (
	// perPlan: the probes of one plan share one reading (engine.Shared);
	// every re-check and Apply reads again, to see the world as their
	// dependencies have just left it. For facts a run changes: whether
	// the cluster has a script, and where.
	perPlan freshness = iota
	// onceFound: perPlan until a reading finds the fact; from then on it
	// is kept for the rest of the run. For facts that never change once
	// they exist: the cluster CA (a thousand hosts' Applies would
	// otherwise each read it again). A reading that finds nothing, or
	// fails, is never kept.
	onceFound
)

// runFacts holds the onceFound facts of one Env (one run) and the last
// reading of each polled fact.
type runFacts struct {
	mu    sync.Mutex
	found map[string]any
	polls map[string]*engine.Flight
}

// polledRead returns the fact key as a reading that started at or after
// notBefore and finished less than fresh ago, or such a reading in flight:
// the steps that wait for the same fact at once (fifty registrations each
// polling their environment's hosts) share one reading per round instead
// of making one each, and none takes a reading from before what it waits
// for began. A reading runs with the context of the caller that started
// it; its result is shared for the round, except a failure that came from
// that caller's context ending, which the next caller reads again.
func polledRead[T any](ctx context.Context, f *runFacts, key string, fresh time.Duration, notBefore time.Time, read func(context.Context) (T, error)) (T, error) {
	f.mu.Lock()
	e, ok := f.polls[key]
	mine := !ok || e.Started().Before(notBefore)
	if !mine {
		if at, done := e.Finished(); done {
			mine = time.Since(at) >= fresh
		}
	}
	if mine {
		e = engine.NewFlight()
		if f.polls == nil {
			f.polls = map[string]*engine.Flight{}
		}
		f.polls[key] = e
	}
	f.mu.Unlock()
	if mine {
		v, err := read(ctx)
		if err != nil && ctx.Err() != nil {
			f.mu.Lock()
			if f.polls[key] == e {
				delete(f.polls, key)
			}
			f.mu.Unlock()
		}
		e.Finish(v, err)
		return v, err
	}
	return engine.Await[T](ctx, e)
}

// sharedRead returns the fact key, read by read with the given freshness.
// found tells a reading that found the fact from one that did not (only
// used by onceFound).
func sharedRead[T any](ctx context.Context, f *runFacts, key string, fr freshness, read func(context.Context) (T, error), found func(T) bool) (T, error) {
	if fr == onceFound {
		f.mu.Lock()
		v, ok := f.found[key]
		f.mu.Unlock()
		if ok {
			return v.(T), nil
		}
	}
	v, err := engine.Shared(ctx, key, read)
	if err == nil && fr == onceFound && found(v) {
		f.mu.Lock()
		if f.found == nil {
			f.found = map[string]any{}
		}
		f.found[key] = v
		f.mu.Unlock()
	}
	return v, err
}
