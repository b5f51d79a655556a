package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/haplan/haplan/engine"
	"github.com/haplan/haplan/manifests"
	"github.com/haplan/haplan/resources"
)

// runHaplan is `haplan-bench haplan plan|apply -f MANIFEST`, run as a child
// process so that its wall time includes process start like the peers'.
// It is haplan's own code path (manifests.Load, resources.NewEnv and
// Compile, engine.Plan/Apply, the real transport) for the cert.distribute
// steps only, with their dependency on ha.verify dropped: `haplan
// --target 'cert.distribute[*]'` pulls in the whole graph (see BENCHMARKS.md).
// Preflight checks and the MySQL apply lock are not run.
func runHaplan(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("haplan plan|apply")
	}
	mode := args[0]
	fs := flag.NewFlagSet("haplan", flag.ContinueOnError)
	file := fs.String("f", "", "manifest")
	par := fs.Int("parallelism", 10, "steps at once")
	cpuprof := fs.String("cpuprofile", "", "write a CPU profile")
	memprof := fs.String("memprofile", "", "write a heap profile at the peak (after probing)")
	logFile := fs.String("log", "", "write haplan's debug log (JSON lines) here")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *cpuprof != "" {
		f, err := os.Create(*cpuprof)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	ctx := context.Background()
	start := time.Now()
	c, ds := manifests.Load(*file)
	if ds.HasErrors() {
		return fmt.Errorf("manifest: %v", ds)
	}
	ropts := resources.Options{}
	if *logFile != "" {
		lf, err := os.Create(*logFile)
		if err != nil {
			return err
		}
		defer lf.Close()
		ropts.Logger = slog.New(slog.NewJSONHandler(lf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	env, err := resources.NewEnv(c, ropts)
	if err != nil {
		return err
	}
	defer env.Close()
	all, err := resources.Compile(c, env)
	if err != nil {
		return err
	}
	var steps []engine.Step
	for _, s := range all {
		if strings.HasPrefix(string(s.Addr()), "cert.distribute[") {
			steps = append(steps, noDeps{s})
		}
	}
	g, err := engine.NewGraph(steps)
	if err != nil {
		return err
	}
	var peakG atomic.Int64
	stopG := sampleGoroutines(&peakG)
	opts := engine.Options{Parallelism: *par}
	p, err := engine.Plan(ctx, g, opts)
	if err != nil {
		return err
	}
	planned := time.Since(start)
	if *memprof != "" {
		if err := writeHeap(*memprof); err != nil {
			return err
		}
	}
	out := runnerResult{Mode: mode, Steps: len(steps), PlanSeconds: planned.Seconds()}
	for _, ch := range p.Changes {
		if ch.Pending() {
			out.Pending++
		}
	}
	if mode == "apply" && p.HasChanges() {
		res, err := engine.Apply(ctx, g, p, opts)
		if err != nil {
			return err
		}
		s := res.Summary()
		out.Applied, out.Failed = s.Applied, s.Failed+s.Skipped
		if out.Failed > 0 {
			for _, r := range res.Steps {
				if r.Err != nil {
					return fmt.Errorf("%d steps failed, first: %v", out.Failed, r.Err)
				}
			}
		}
	}
	stopG()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	out.Seconds = time.Since(start).Seconds()
	out.PeakGoroutines = int(peakG.Load())
	out.HeapSysMiB = float64(ms.HeapSys) / (1 << 20)
	out.TotalAllocMiB = float64(ms.TotalAlloc) / (1 << 20)
	return json.NewEncoder(stdout).Encode(out)
}

type runnerResult struct {
	Mode           string  `json:"mode"`
	Steps          int     `json:"steps"`
	Pending        int     `json:"pending"`
	Applied        int     `json:"applied"`
	Failed         int     `json:"failed"`
	PlanSeconds    float64 `json:"plan_seconds"`
	Seconds        float64 `json:"seconds"`
	PeakGoroutines int     `json:"peak_goroutines"`
	HeapSysMiB     float64 `json:"heap_sys_mib"`
	TotalAllocMiB  float64 `json:"total_alloc_mib"`
}

// noDeps is a step with its dependencies dropped (see runHaplan).
type noDeps struct{ engine.Step }

func (noDeps) Deps() []engine.Addr { return nil }

func sampleGoroutines(peak *atomic.Int64) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			if n := int64(runtime.NumGoroutine()); n > peak.Load() {
				peak.Store(n)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

func writeHeap(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return pprof.WriteHeapProfile(f)
}
