package engine

import (
	"context"
	"sync"
)

// probeMemo holds the reads that the probes of one Plan share.
type probeMemo struct {
	mu      sync.Mutex
	entries map[string]*memoEntry
}

type memoEntry struct {
	done chan struct{}
	val  any
	err  error
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
		e = &memoEntry{done: make(chan struct{})}
		m.entries[key] = e
	}
	m.mu.Unlock()
	if !found {
		v, err := read(ctx)
		e.val, e.err = v, err
		close(e.done)
	} else {
		select {
		case <-e.done:
		case <-ctx.Done():
			var zero T
			return zero, ctx.Err()
		}
	}
	v, _ := e.val.(T)
	return v, e.err
}

func withProbeMemo(ctx context.Context) context.Context {
	return context.WithValue(ctx, memoKey{}, &probeMemo{entries: map[string]*memoEntry{}})
}
