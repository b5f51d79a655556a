package engine

import "context"

// sema is a counting semaphore whose acquire gives up when the context is
// done or the stop channel closes.
type sema chan struct{}

func newSema(n int) sema { return make(sema, n) }

// acquire takes a slot. A nil sema is unbounded. It returns false, holding
// nothing, when ctx is done or stop is closed first.
func (s sema) acquire(ctx context.Context, stop <-chan struct{}) bool {
	if s == nil {
		return true
	}
	select {
	case s <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	case <-stop:
		return false
	}
}

func (s sema) release() {
	if s != nil {
		<-s
	}
}

// slots holds the semaphores of one Plan or Apply: one global, one per
// host. They are always taken host first, then global, so no two
// goroutines can wait for each other; host first also means a goroutine
// never holds a global slot while it waits for its host to free up.
type slots struct {
	global sema
	host   map[string]sema // no entry for the empty host: not capped
}

func newSlots(g *Graph, o Options) *slots {
	s := &slots{global: newSema(o.Parallelism), host: make(map[string]sema)}
	for _, st := range g.steps {
		if h := st.Host(); h != "" && s.host[h] == nil {
			s.host[h] = newSema(o.PerHost)
		}
	}
	return s
}

// acquire takes the host's slot and a global slot, or nothing.
func (s *slots) acquire(ctx context.Context, stop <-chan struct{}, host string) bool {
	h := s.host[host]
	if !h.acquire(ctx, stop) {
		return false
	}
	if !s.global.acquire(ctx, stop) {
		h.release()
		return false
	}
	return true
}

func (s *slots) release(host string) {
	s.global.release()
	s.host[host].release()
}
