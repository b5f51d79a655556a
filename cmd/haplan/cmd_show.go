package main

import (
	"context"
	"fmt"
)

// show renders a saved plan (text, markdown or JSON) without the manifest
// and without touching the network: the review of a plan file attached to
// a pull request or a change ticket.
func (a *app) show(ctx context.Context, args []string) int {
	fs := a.newFlags("show")
	var po planOptions
	var asJSON bool
	fs.StringVar(&po.format, "format", "text", "text, markdown or json")
	fs.BoolVar(&asJSON, "json", false, "same as --format json")
	fs.BoolVar(&po.showUnchanged, "show-unchanged", false, "list unchanged steps")
	pos, code, done := parseFlags(fs, args)
	if done {
		return code
	}
	if asJSON {
		po.format = "json"
	}
	switch {
	case len(pos) != 1:
		fmt.Fprintln(a.stderr, "haplan show: give one plan file (saved by 'haplan plan --out FILE')")
		return exitError
	case po.format != "text" && po.format != "markdown" && po.format != "json":
		fmt.Fprintf(a.stderr, "haplan show: unknown --format %q (text, markdown or json)\n", po.format)
		return exitError
	}
	return a.newRun(ctx, "show", planFlags{}).do(func(r *run) error {
		p, err := readPlanFile(pos[0])
		if err != nil {
			return err
		}
		// A plan file holds no secret (plans never do): nothing to redact.
		r.plan, r.o = p, r.a.newOutput(nil)
		r.onClose(r.o.flush)
		return nil
	}, po.render)
}
