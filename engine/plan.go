package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/haplan/haplan/plans"
)

// Plan probes every step of g and diffs what it found. Probes are read-only,
// so they all run concurrently, in no dependency order, bounded by
// opts.Parallelism and opts.PerHost. Every probe runs to the end even when
// another fails, so that one run reports every broken host.
//
// The plan's Changes follow g.Steps(); the engine fills in a Change's Addr,
// Host and Kind when the step left them empty. Probes maps each address to
// the hex SHA-256 of the JSON encoding of its probed state. The caller sets
// Cluster, ManifestDigest, Created and Partial.
//
// Probes of one Plan share the reads they make through Shared.
//
// A probe that fails because a machine did not answer (the error is
// Unreachable) does not fail the plan: its step's change is Unknown, with
// the reason, and its probe digest "unreachable". On any other failure
// Plan returns no plan and every probe or diff failure, each a
// *StepError, joined.
func Plan(ctx context.Context, g *Graph, opts Options) (*plans.Plan, error) {
	opts = opts.withDefaults()
	ctx = withProbeMemo(withoutChange(ctx))
	sl := newSlots(g, opts)
	steps := g.Steps()
	changes := make([]plans.Change, len(steps))
	digests := make([]string, len(steps))
	errs := make([]error, len(steps))

	var wg sync.WaitGroup
	for i, s := range steps {
		wg.Go(func() {
			changes[i], digests[i], errs[i] = probe(ctx, sl, s, opts)
		})
	}
	wg.Wait()

	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	p := &plans.Plan{
		FormatVersion: plans.FormatVersion,
		Changes:       changes,
		Probes:        make(map[string]string, len(steps)),
	}
	for i, s := range steps {
		p.Probes[string(s.Addr())] = digests[i]
	}
	return p, nil
}

// probe runs one step's Probe and Diff inside its slots.
func probe(ctx context.Context, sl *slots, s Step, opts Options) (plans.Change, string, error) {
	addr, host := s.Addr(), s.Host()
	fail := func(err error) (plans.Change, string, error) {
		return plans.Change{}, "", &StepError{Addr: addr, Host: host, Phase: PhaseProbe, Err: err}
	}
	if !sl.acquire(ctx, nil, host) {
		return fail(ctx.Err())
	}
	defer sl.release(host)

	r := &reporter{sink: opts.Sink, addr: addr, host: host, phase: PhaseProbe, start: time.Now()}
	r.emit(ProbeStarted, "", nil)
	opts.Logger.DebugContext(ctx, "probe started", "addr", addr, "host", host)

	c, digest, err := probeDiff(withReporter(ctx, r), s)
	if h, ok := IsUnreachable(err); ok && ctx.Err() == nil {
		// One machine that does not answer is a finding, not a failed plan.
		c = plans.Change{Addr: string(addr), Host: host, Kind: plans.Kind(string(addr)), Action: plans.Unknown,
			Reason: fmt.Sprintf("not probed: %s did not answer (%v)", h, err), Unreachable: h,
			Check: isCheck(s)}
		r.change = &c
		r.emit(ProbeFinished, c.Reason, nil)
		opts.Logger.DebugContext(ctx, "probe unreachable", "addr", addr, "host", h, "err", err)
		return c, "unreachable", nil
	}
	if err != nil {
		r.emit(ProbeFinished, "", err)
		opts.Logger.DebugContext(ctx, "probe failed", "addr", addr, "err", err)
		return fail(err)
	}
	r.change = &c
	r.emit(ProbeFinished, c.Reason, nil)
	opts.Logger.DebugContext(ctx, "probe finished", "addr", addr, "action", c.Action, "digest", digest)
	return c, digest, nil
}

// Checker is implemented by verification steps (their changes have
// Check set), so that a check that could not be probed stays a check.
type Checker interface{ IsCheck() bool }

func isCheck(s Step) bool {
	c, ok := s.(Checker)
	return ok && c.IsCheck()
}

func probeDiff(ctx context.Context, s Step) (plans.Change, string, error) {
	st, err := s.Probe(ctx)
	if err != nil {
		return plans.Change{}, "", err
	}
	b, err := json.Marshal(st)
	if err != nil {
		return plans.Change{}, "", fmt.Errorf("digest probed state: %w", err)
	}
	sum := sha256.Sum256(b)

	c := s.Diff(st)
	addr := string(s.Addr())
	switch c.Addr {
	case "":
		c.Addr = addr
	case addr:
	default:
		return plans.Change{}, "", fmt.Errorf("diff returned a change for %q", c.Addr)
	}
	if c.Kind == "" {
		c.Kind = plans.Kind(addr)
	}
	if c.Host == "" {
		c.Host = s.Host()
	}
	return c, hex.EncodeToString(sum[:]), nil
}
