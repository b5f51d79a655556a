package resources

import (
	"context"
	"sync"

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

// runFacts holds the onceFound facts of one Env (one run).
type runFacts struct {
	mu    sync.Mutex
	found map[string]any
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
