package main

import (
	"context"

	"github.com/haplan/haplan/health"
)

func (a *app) status(ctx context.Context, args []string) int {
	fs := a.newFlags("status")
	var pf planFlags
	var asJSON bool
	fs.StringVar(&pf.file, "f", "cluster.yaml", "the manifest")
	fs.BoolVar(&asJSON, "json", false, "the report as JSON")
	if code, done := a.parseOnlyFlags(fs, args); done {
		return code
	}
	pf.diagJSON = asJSON
	return a.newRun(ctx, "status", pf).do(load, connect, func(r *run) error {
		rep := r.env.Status(r.ctx)
		rep.Evaluate(r.a.now())
		var err error
		if asJSON {
			err = writeJSON(r.o.out, rep)
		} else {
			err = health.Render(r.o.out, rep, r.a.now())
		}
		switch rep.Verdict() {
		case health.Degraded:
			r.code = exitDegraded
		case health.Down:
			r.code = exitDown
		}
		return err
	})
}
