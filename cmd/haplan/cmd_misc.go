package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/haplan/haplan/preflight"
	"github.com/haplan/haplan/resources"
)

func (a *app) validate(ctx context.Context, args []string) int {
	fs := a.newFlags("validate")
	var pf planFlags
	var strict bool
	fs.StringVar(&pf.file, "f", "cluster.yaml", "the manifest")
	fs.BoolVar(&pf.diagJSON, "json", false, "print the diagnostics as one JSON document on stdout")
	fs.BoolVar(&strict, "strict", false, "secrets that are not set are errors (as plan and apply see them)")
	if code, done := a.parseOnlyFlags(fs, args); done {
		return code
	}
	pf.offline = !strict
	return a.newRun(ctx, "validate", pf).do(load, func(r *run) error {
		if !pf.diagJSON {
			what := "The manifest " + pf.file
			if pf.file == "-" {
				what = "The manifest on standard input"
			}
			fmt.Fprintf(r.o.out, "%s is valid (cluster %s).\n", what, r.m.Name)
		}
		return nil
	})
}

func (a *app) graph(ctx context.Context, args []string) int {
	fs := a.newFlags("graph")
	var pf planFlags
	var format string
	fs.StringVar(&pf.file, "f", "cluster.yaml", "the manifest")
	fs.StringVar(&format, "format", "dot", "dot or mermaid")
	fs.Var(&pf.targets, "target", "only matching steps and what they depend on")
	if code, done := a.parseOnlyFlags(fs, args); done {
		return code
	}
	if format != "dot" && format != "mermaid" {
		fmt.Fprintf(a.stderr, "haplan graph: unknown --format %q (dot or mermaid)\n", format)
		return exitError
	}
	return a.newRun(ctx, "graph", pf).do(load, session, func(r *run) error {
		if format == "mermaid" {
			fmt.Fprint(r.o.out, r.g.Mermaid())
		} else {
			fmt.Fprint(r.o.out, r.g.DOT())
		}
		return nil
	})
}

// check runs the preflight checks and lists every one of them.
func (a *app) check(ctx context.Context, args []string) int {
	fs := a.newFlags("check")
	var pf planFlags
	var asJSON bool
	fs.StringVar(&pf.file, "f", "cluster.yaml", "the manifest")
	fs.BoolVar(&asJSON, "json", false, "print the findings as JSON")
	if code, done := a.parseOnlyFlags(fs, args); done {
		return code
	}
	pf.diagJSON = asJSON
	return a.newRun(ctx, "check", pf).do(load, debugLog, connect, func(r *run) error {
		rep := r.env.Preflight(r.ctx)
		var err error
		if asJSON {
			err = writeJSON(r.o.out, rep)
		} else {
			err = preflight.Render(r.o.out, rep)
		}
		if err != nil {
			return err
		}
		if !rep.OK() {
			r.code = exitError
		}
		return nil
	})
}

func (a *app) forceUnlock(ctx context.Context, args []string) int {
	fs := a.newFlags("force-unlock")
	var pf planFlags
	var force bool
	fs.StringVar(&pf.file, "f", "cluster.yaml", "the manifest")
	fs.BoolVar(&force, "force", false, "release it even from a run that is alive, and do not ask")
	pos, code, done := parseFlags(fs, args)
	if done {
		return code
	}
	var want int64
	switch {
	case len(pos) > 1:
		fmt.Fprintf(a.stderr, "haplan force-unlock: at most one lock ID, got %q\n", pos)
		return exitError
	case len(pos) == 1:
		id, err := strconv.ParseInt(pos[0], 10, 64)
		if err != nil || id <= 0 {
			fmt.Fprintf(a.stderr, "haplan force-unlock: %q is not a lock ID (the number a refused apply names: \"lock ID 1234\")\n", pos[0])
			return exitError
		}
		want = id
	}
	return a.newRun(ctx, "force-unlock", pf).do(load, connect, func(r *run) error {
		h, err := r.env.LockStatus(r.ctx)
		if err != nil {
			return fmt.Errorf("force-unlock: %w", err)
		}
		switch {
		case h == nil:
			fmt.Fprintf(r.o.out, "No lock was held on cluster %s.\n", r.m.Name)
			return nil
		case want != 0 && h.ID != want:
			return fmt.Errorf("force-unlock: %w", &resources.LockMovedError{Want: want, Now: h})
		case h.Live && !force:
			return fmt.Errorf("force-unlock: the lock is held by a run that is alive, %s: it renews the lock every 2 s. Wait for it to finish, or stop it; --force releases the lock anyway", h)
		}
		if r.a.stdinTTY && !force {
			fmt.Fprintf(r.o.out, "Release the lock of cluster %s, held by %s?\nOnly 'yes' will be accepted: ", r.m.Name, h)
			r.o.flush()
			line, _ := bufio.NewReader(r.a.stdin).ReadString('\n')
			if strings.TrimSpace(line) != "yes" {
				fmt.Fprintln(r.o.errw, "Force-unlock cancelled.")
				return reported(exitError, errors.New("force-unlock cancelled"))
			}
		}
		now, err := r.env.ForceUnlock(r.ctx, h.ID)
		if err != nil {
			return fmt.Errorf("force-unlock: %w", err)
		}
		fmt.Fprintf(r.o.out, "The lock of cluster %s, held by %s, is released.\n", r.m.Name, h)
		if now != nil {
			fmt.Fprintf(r.o.out, "Another run took it at once and holds it now: %s. That run was not touched; it releases the lock when it ends.\n", now)
		}
		return nil
	})
}
