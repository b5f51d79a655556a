package main

import (
	"context"
	"fmt"
	"time"

	"github.com/haplan/haplan/diag"
	"github.com/haplan/haplan/plans"
)

// planFlags are the options every command that reads the manifest shares
// (each command registers the ones it takes).
type planFlags struct {
	file        string
	parallelism int
	targets     stringList
	// diagJSON: an invalid manifest's diagnostics go to stdout as JSON
	// (the command's --json); validate's always do.
	diagJSON bool
	// offline: load without secrets (validate without --strict).
	offline bool
	// lockWait: how long the lock phase waits for another run's lock
	// (apply --lock-timeout).
	lockWait time.Duration
}

// planOptions are plan's own options.
type planOptions struct {
	out, format             string
	detailed, showUnchanged bool
}

func (a *app) plan(ctx context.Context, args []string) int {
	fs := a.newFlags("plan")
	var pf planFlags
	var po planOptions
	var asJSON bool
	fs.StringVar(&pf.file, "f", "cluster.yaml", "the manifest")
	fs.IntVar(&pf.parallelism, "parallelism", 10, "probes run at once")
	fs.Var(&pf.targets, "target", "plan only matching steps (repeatable)")
	fs.StringVar(&po.out, "out", "", "save the plan to this file")
	fs.StringVar(&po.format, "format", "text", "text, markdown or json")
	fs.BoolVar(&asJSON, "json", false, "same as --format json")
	fs.BoolVar(&po.detailed, "detailed-exitcode", false, "exit 2 when changes are present")
	fs.BoolVar(&po.showUnchanged, "show-unchanged", false, "list unchanged steps")
	if code, done := a.parseOnlyFlags(fs, args); done {
		return code
	}
	if asJSON {
		po.format = "json"
	}
	pf.diagJSON = po.format == "json"
	switch po.format {
	case "text", "markdown", "json":
	default:
		fmt.Fprintf(a.stderr, "haplan plan: unknown --format %q (text, markdown or json)\n", po.format)
		return exitError
	}
	if pf.parallelism < 1 {
		fmt.Fprintln(a.stderr, "haplan plan: --parallelism must be at least 1")
		return exitError
	}
	return a.newRun(ctx, "plan", pf).do(load, debugLog, session, planPhase, po.render, po.save, planIncomplete, po.exitCode)
}

// render shows the plan in the chosen format on stdout.
func (po planOptions) render(r *run) error {
	switch po.format {
	case "json":
		return renderJSON(r.o.out, r.plan)
	case "markdown":
		return renderMarkdown(r.o.out, visiblePlan(r.plan))
	}
	return renderText(r.o.out, visiblePlan(r.plan), textOptions{Color: r.a.color(r.a.stdoutTTY), ShowUnchanged: po.showUnchanged})
}

// visiblePlan is p with every text escaped for a terminal (diag.Visible):
// a plan file from a pull request, or a hand-edited haproxy.cfg in a
// diff, must not drive the reader's terminal.
func visiblePlan(p *plans.Plan) *plans.Plan {
	v := diag.Visible
	out := *p
	out.Cluster = v(p.Cluster)
	out.Changes = make([]plans.Change, len(p.Changes))
	for i, c := range p.Changes {
		c.Addr, c.Kind, c.Host, c.Reason, c.Unreachable = v(c.Addr), v(c.Kind), v(c.Host), v(c.Reason), v(c.Unreachable)
		ws := make([]string, len(c.Warnings))
		for j, w := range c.Warnings {
			ws[j] = v(w)
		}
		c.Warnings = ws
		ds := make([]plans.Detail, len(c.Details))
		for j, d := range c.Details {
			d.Name, d.Old, d.New = v(d.Name), v(d.Old), v(d.New)
			diff := make([]string, len(d.Diff))
			for k, l := range d.Diff {
				diff[k] = v(l)
			}
			if d.Diff == nil {
				diff = nil
			}
			d.Diff = diff
			ds[j] = d
		}
		if c.Details == nil {
			ds = nil
		}
		c.Details = ds
		out.Changes[i] = c
	}
	return &out
}

// save writes the plan to --out, and says how to apply it.
func (po planOptions) save(r *run) error {
	if po.out == "" {
		return nil
	}
	if err := writePlanFile(po.out, r.plan, r.o); err != nil {
		return err
	}
	if po.format == "text" {
		fmt.Fprintf(r.o.out, "\nSaved the plan to %s. To perform exactly these actions, run:\n  haplan apply -f %s %s\n", po.out, r.pf.file, po.out)
	}
	return nil
}

// exitCode is 2 with --detailed-exitcode when there are changes.
func (po planOptions) exitCode(r *run) error {
	if po.detailed && r.plan.HasChanges() {
		r.code = exitChanges
	}
	return nil
}
