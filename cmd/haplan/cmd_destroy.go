package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/haplan/haplan/engine"
	"github.com/haplan/haplan/resources"
)

// destroyRun is destroy's part of a run.
type destroyRun struct {
	applyRun
	opts resources.DestroyOptions
}

func (a *app) destroy(ctx context.Context, args []string) int {
	fs := a.newFlags("destroy")
	var pf planFlags
	dr := &destroyRun{}
	fs.StringVar(&pf.file, "f", "cluster.yaml", "the manifest")
	fs.IntVar(&pf.parallelism, "parallelism", 10, "steps run at once")
	fs.Var(&pf.targets, "target", "destroy only matching steps and what they depend on")
	fs.BoolVar(&dr.autoApprove, "auto-approve", false, "do not ask for the cluster's name")
	fs.BoolVar(&dr.opts.DropDatabase, "drop-database", false, "drop the Rancher database too")
	if code, done := a.parseOnlyFlags(fs, args); done {
		return code
	}
	if pf.parallelism < 1 {
		fmt.Fprintln(a.stderr, "haplan destroy: --parallelism must be at least 1")
		return exitError
	}
	ar := &dr.applyRun
	return a.newRun(ctx, "destroy", pf).do(load, ar.interrupts, ar.openLog, dr.session, lock, probeOnly, dr.review, dr.confirm, ar.walk, dr.report)
}

// session connects and builds the graph of the destroy steps.
func (dr *destroyRun) session(r *run) error {
	if err := connect(r); err != nil {
		return err
	}
	g, err := engine.NewGraph(r.env.DestroySteps(dr.opts))
	if err == nil && len(r.pf.targets) > 0 {
		g, err = g.Target(r.pf.targets)
	}
	if err != nil {
		return fmt.Errorf("build the step graph: %w", err)
	}
	r.g = g
	return nil
}

// review shows what would be destroyed; with nothing left the run ends.
func (dr *destroyRun) review(r *run) error {
	if err := renderText(r.o.out, r.plan, textOptions{Color: r.a.color(r.a.stdoutTTY)}); err != nil {
		return err
	}
	if !r.plan.HasChanges() {
		fmt.Fprintln(r.o.out, "\nNothing to destroy.")
		return errDone
	}
	return nil
}

// confirm asks for the cluster's name on a terminal: a "yes" typed out of
// habit must not destroy a cluster. Without a terminal only
// --auto-approve goes on.
func (dr *destroyRun) confirm(r *run) error {
	if dr.autoApprove {
		return nil
	}
	if !r.a.stdinTTY {
		fmt.Fprintln(r.o.errw, "Error: refusing to destroy without confirmation: stdin is not a terminal. Review the plan, then run haplan destroy --auto-approve.")
		return reported(exitError, errors.New("destroy not confirmed"))
	}
	fmt.Fprintf(r.o.out, "\nThis destroys cluster %s. Type its name to go on: ", r.m.Name)
	r.o.flush()
	line, _ := bufio.NewReader(r.a.stdin).ReadString('\n')
	if strings.TrimSpace(line) != r.m.Name {
		fmt.Fprintln(r.o.errw, "Destroy cancelled.")
		return reported(exitError, errors.New("destroy not confirmed"))
	}
	return nil
}

func (dr *destroyRun) report(r *run) error {
	if r.plan.Partial {
		return nil
	}
	kept := "its database is kept (--drop-database drops it)"
	if dr.opts.DropDatabase {
		kept = "its database is dropped"
	}
	fmt.Fprintf(r.o.out, "\nCluster %s is destroyed; %s; the backup taken first is under .haplan/backups/ next to the manifest.\n", r.m.Name, kept)
	return nil
}
