package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/haplan/haplan/engine"
	"github.com/haplan/haplan/plans"
)

// renderApplySummary writes what an apply did: counts, then every failure
// with its host and error, every skipped step with the failure upstream of
// it, the steps that did not start, and what to do next.
func renderApplySummary(w io.Writer, res *engine.Result, o textOptions) error {
	ew := &errWriter{w: w}
	pal := palette(o.Color)
	sum := res.Summary()
	head := "Apply complete: "
	switch {
	case sum.Failed > 0:
		head = "Apply failed: "
	case sum.NotStarted > 0:
		head = "Apply interrupted: "
	}
	ew.printf("\n%s\n", pal.wrap(ansiBold, head+sum.String()+"."))

	var failed, skipped, notStarted []engine.StepResult
	for _, s := range res.Steps {
		switch s.Status {
		case engine.StatusFailed:
			failed = append(failed, s)
		case engine.StatusSkipped:
			skipped = append(skipped, s)
		case engine.StatusNotStarted:
			notStarted = append(notStarted, s)
		}
	}
	if len(failed) > 0 {
		ew.printf("\n%s\n", pal.wrap(ansiRed, "Failed:"))
		for _, s := range failed {
			head := "  ✗ " + string(s.Addr)
			if s.Host != "" {
				head += " on " + s.Host
			}
			ew.printf("%s (after %s)\n", head, fmtDuration(s.Elapsed))
			for _, line := range strings.Split(strings.TrimRight(stepErrText(s.Err), "\n"), "\n") {
				ew.printf("      %s\n", line)
			}
		}
	}
	if len(skipped) > 0 {
		ew.printf("\n%s\n", pal.wrap(ansiYellow, "Skipped (upstream failed):"))
		for _, s := range skipped {
			ew.printf("  - %s (because %s failed)\n", s.Addr, s.Cause)
		}
	}
	if len(notStarted) > 0 {
		ew.printf("\nNot started (interrupted):\n")
		for _, s := range notStarted {
			ew.printf("  - %s\n", s.Addr)
		}
	}
	if n := len(failed) + len(skipped) + len(notStarted); n > 0 && isRestore(res) {
		// apply would start the cluster on a database the load may have
		// cut half way.
		ew.printf("\n%d %s still to do: the restore did not finish. Fix the cause and run the same haplan restore again (haplan apply would start the cluster on the database as it is).\n", n, plural(n, "step is", "steps are"))
	} else if n > 0 {
		ew.printf("\n%d %s still to do. Fix the cause and run `haplan plan` to see what remains; `haplan apply` resumes from the live state.\n",
			n, plural(n, "step is", "steps are"))
	}
	return ew.err
}

// isRestore reports a walk of a restore's own steps (restore.stop,
// restore.load).
func isRestore(res *engine.Result) bool {
	return slices.ContainsFunc(res.Steps, func(s engine.StepResult) bool { return plans.Kind(string(s.Addr)) == "restore.load" })
}

// stepErrText is the error of a failed step without the address and host
// the summary already shows.
func stepErrText(err error) string {
	if err == nil {
		return "unknown error"
	}
	var se *engine.StepError
	if errors.As(err, &se) && se.Err != nil {
		return se.Err.Error()
	}
	return fmt.Sprint(err)
}
