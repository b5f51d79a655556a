package main

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/haplan/haplan/preflight"
	"log/slog"
)

func (a *app) validate(_ context.Context, args []string) int {
	fs := a.newFlags("validate")
	file := fs.String("f", "cluster.yaml", "the manifest")
	if code, done := a.parseOnlyFlags(fs, args); done {
		return code
	}
	m, err := a.loadManifest(*file)
	if err != nil {
		return exitError
	}
	fmt.Fprintf(a.stdout, "The manifest %s is valid (cluster %s).\n", *file, m.Name)
	return exitOK
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
	s := a.openSession(ctx, pf, slog.New(slog.DiscardHandler))
	if s == nil {
		return exitError
	}
	defer s.close()
	if format == "mermaid" {
		fmt.Fprint(s.o.out, s.g.Mermaid())
	} else {
		fmt.Fprint(s.o.out, s.g.DOT())
	}
	return exitOK
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
	s := a.openSession(ctx, pf, slog.New(slog.DiscardHandler))
	if s == nil {
		return exitError
	}
	defer s.close()
	o := s.o
	r := s.env.Preflight(ctx)
	var err error
	if asJSON {
		enc := json.NewEncoder(o.out)
		enc.SetIndent("", "  ")
		err = enc.Encode(r)
	} else {
		err = preflight.Render(o.out, r)
	}
	if err != nil {
		printError(o.errw, err)
		return exitError
	}
	if !r.OK() {
		return exitError
	}
	return exitOK
}

func (a *app) forceUnlock(ctx context.Context, args []string) int {
	fs := a.newFlags("force-unlock")
	var pf planFlags
	fs.StringVar(&pf.file, "f", "cluster.yaml", "the manifest")
	if code, done := a.parseOnlyFlags(fs, args); done {
		return code
	}
	m, err := a.loadManifest(pf.file)
	if err != nil {
		return exitError
	}
	o := a.newOutput(m.Secrets)
	defer o.flush()
	env, err := m.Connect(ctx, slog.New(slog.DiscardHandler))
	if err != nil {
		printError(o.errw, err)
		return exitError
	}
	defer env.Close()
	holder, err := env.ForceUnlock(ctx)
	if err != nil {
		printError(o.errw, fmt.Errorf("force-unlock: %w", err))
		return exitError
	}
	if holder != "" {
		fmt.Fprintf(o.out, "The lock of cluster %s, held by %s, is released.\n", m.Name, holder)
	} else {
		fmt.Fprintf(o.out, "The lock of cluster %s is released.\n", m.Name)
	}
	return exitOK
}
