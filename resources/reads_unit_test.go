package resources

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/haplan/haplan/engine"
)

// Callers that poll one fact at once share a reading: those that come
// while it is in flight wait for it, those within fresh of its end reuse
// it, and the first after that reads again. A failure is shared for its
// round, then read again too.
func TestPolledReadSharesARound(t *testing.T) {
	var f runFacts
	var reads atomic.Int32
	release := make(chan struct{})
	read := func(context.Context) (int, error) {
		n := reads.Add(1)
		<-release
		return int(n), nil
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	got := make([]int, 20)
	for i := range got {
		wg.Go(func() {
			v, err := polledRead(ctx, &f, "k", time.Hour, time.Time{}, read)
			if err != nil {
				t.Error(err)
			}
			got[i] = v
		})
	}
	for reads.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // the others are waiting on the reading
	close(release)
	wg.Wait()
	for i, v := range got {
		if v != 1 {
			t.Errorf("caller %d got reading %d, want the shared first", i, v)
		}
	}
	if v, _ := polledRead(ctx, &f, "k", time.Hour, time.Time{}, read); v != 1 || reads.Load() != 1 {
		t.Errorf("within fresh: reading %d after %d reads, want the first reused", v, reads.Load())
	}
	if v, _ := polledRead(ctx, &f, "k", 0, time.Time{}, read); v != 2 {
		t.Errorf("past fresh: reading %d, want a new one", v)
	}
	if v, _ := polledRead(ctx, &f, "other", time.Hour, time.Time{}, read); v != 3 {
		t.Errorf("another key: reading %d, want its own", v)
	}

	boom := errors.New("boom")
	fail := func(context.Context) (int, error) { reads.Add(1); return 0, boom }
	if _, err := polledRead(ctx, &f, "e", time.Hour, time.Time{}, fail); !errors.Is(err, boom) {
		t.Errorf("failed reading: %v", err)
	}
	if _, err := polledRead(ctx, &f, "e", time.Hour, time.Time{}, read); !errors.Is(err, boom) {
		t.Errorf("within the failed round: %v, want its failure shared", err)
	}
	if v, err := polledRead(ctx, &f, "e", 0, time.Time{}, read); err != nil || v == 0 {
		t.Errorf("after the failed round: %d, %v; want a new reading", v, err)
	}
}

// A caller that waits on another's reading stops waiting when its own
// context ends.
func TestPolledReadWaiterCancelled(t *testing.T) {
	var f runFacts
	release := make(chan struct{})
	defer close(release)
	started := make(chan struct{})
	go func() {
		_, _ = polledRead(context.Background(), &f, "k", time.Hour, time.Time{}, func(context.Context) (int, error) {
			close(started)
			<-release
			return 1, nil
		})
	}()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := polledRead(ctx, &f, "k", time.Hour, time.Time{}, func(context.Context) (int, error) { return 2, nil }); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waiter whose context ended: %v, want DeadlineExceeded", err)
	}
}

// A reading that started before what the caller waits for began is never
// its answer, fresh or in flight; a failure that came from its caller's
// context ending is not kept for the others.
func TestPolledReadNotBeforeAndCancelledOwner(t *testing.T) {
	var f runFacts
	ctx := context.Background()
	n := 0
	read := func(context.Context) (int, error) { n++; return n, nil }
	if v, _ := polledRead(ctx, &f, "k", time.Hour, time.Time{}, read); v != 1 {
		t.Fatalf("first reading %d", v)
	}
	if v, _ := polledRead(ctx, &f, "k", time.Hour, time.Now().Add(-time.Hour), read); v != 1 {
		t.Errorf("a reading after notBefore, fresh: got %d, want it reused", v)
	}
	if v, _ := polledRead(ctx, &f, "k", time.Hour, time.Now(), read); v != 2 {
		t.Errorf("a reading from before notBefore: got %d, want a new one", v)
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := polledRead(cctx, &f, "c", time.Hour, time.Time{}, func(ctx context.Context) (int, error) { return 0, ctx.Err() }); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled owner: %v", err)
	}
	if v, err := polledRead(ctx, &f, "c", time.Hour, time.Time{}, read); err != nil || v != 3 {
		t.Errorf("after a cancelled owner's reading: %d, %v; want a new reading", v, err)
	}
}

// A read that finished wins over a context that ended too.
func TestAwaitPrefersTheResult(t *testing.T) {
	fl := engine.NewFlight()
	fl.Finish(7, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range 100 {
		if v, err := engine.Await[int](ctx, fl); v != 7 || err != nil {
			t.Fatalf("Await of a finished read with an ended context = %d, %v", v, err)
		}
	}
}
