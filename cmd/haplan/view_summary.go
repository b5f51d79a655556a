package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/haplan/haplan/engine"
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
	if len(failed)+len(skipped)+len(notStarted) > 0 {
		ew.printf("\n%d %s still to do. Fix the cause and run `haplan plan` to see what remains; `haplan apply` resumes from the live state.\n",
			len(failed)+len(skipped)+len(notStarted), plural(len(failed)+len(skipped)+len(notStarted), "step is", "steps are"))
	}
	return ew.err
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
