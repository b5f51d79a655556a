package main

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/haplan/haplan/plans"
)

// textOptions tune the human plan view.
type textOptions struct {
	// Color enables ANSI colours; set only for a terminal without NO_COLOR.
	Color bool
	// ShowUnchanged lists steps that are already as declared.
	ShowUnchanged bool
}

// ANSI colours used by the human views.
const (
	ansiReset  = "\x1b[0m"
	ansiBold   = "\x1b[1m"
	ansiRed    = "\x1b[31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
	ansiPurple = "\x1b[35m"
	ansiCyan   = "\x1b[36m"
	ansiDim    = "\x1b[2m"
)

// palette applies colours only when enabled, so views never test the flag
// themselves.
type palette bool

func (p palette) wrap(code, s string) string {
	if !p || s == "" {
		return s
	}
	return code + s + ansiReset
}

func (p palette) action(a plans.Action, s string) string {
	switch a {
	case plans.Create:
		return p.wrap(ansiGreen, s)
	case plans.Update:
		return p.wrap(ansiYellow, s)
	case plans.Replace:
		return p.wrap(ansiPurple, s)
	case plans.Delete, plans.Unknown:
		return p.wrap(ansiRed, s)
	}
	return s
}

// diffLine colours one line of a file's diff.
func (p palette) diffLine(l string) string {
	switch {
	case strings.HasPrefix(l, "+"):
		return p.wrap(ansiGreen, l)
	case strings.HasPrefix(l, "-"):
		return p.wrap(ansiRed, l)
	}
	return l
}

// sortedPending returns the pending changes of p grouped by action (create,
// update, replace, delete) and sorted by address within each group: the
// order people scan a plan in, and the one that diffs well in review.
func sortedPending(p *plans.Plan) []plans.Change {
	out := p.Pending()
	sortChanges(out)
	return out
}

func sortChanges(cs []plans.Change) {
	sort.SliceStable(cs, func(i, j int) bool {
		if cs[i].Action != cs[j].Action {
			return cs[i].Action < cs[j].Action
		}
		return cs[i].Addr < cs[j].Addr
	})
}

// checksToRun returns the verification steps apply would run: every check
// when something changes (apply re-verifies what it touched), and a check
// that currently fails even when nothing else changes.
func checksToRun(p *plans.Plan) []plans.Change {
	changes := p.HasChanges()
	var out []plans.Change
	for _, c := range p.Changes {
		if c.Check && (changes || c.Action != plans.NoOp) {
			out = append(out, c)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Addr < out[j].Addr })
	return out
}

// unchanged returns the steps that are already as declared, by address.
func unchanged(p *plans.Plan) []plans.Change {
	var out []plans.Change
	for _, c := range p.Changes {
		if !c.Check && c.Action == plans.NoOp {
			out = append(out, c)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Addr < out[j].Addr })
	return out
}

// detailLine renders one attribute change. A sensitive detail never shows
// its values, not even the digests it carries.
func detailLine(d plans.Detail) string {
	switch {
	case d.Sensitive:
		return d.Name + ": (sensitive value changed)"
	case d.Old == "" && d.New == "":
		return d.Name
	case d.Old == "":
		return fmt.Sprintf("%s: (none) -> %s", d.Name, d.New)
	case d.New == "":
		return fmt.Sprintf("%s: %s -> (none)", d.Name, d.Old)
	default:
		return fmt.Sprintf("%s: %s -> %s", d.Name, d.Old, d.New)
	}
}

// oneLine flattens a reason or message so that one change stays one line,
// which keeps `grep '^\s*[+~±-]'` on a plan honest.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.Join(strings.Fields(s), " ")
}

// renderText writes the human plan: a header, a sorted summary with one
// line per pending change, details, warnings, checks and the closing line.
func renderText(w io.Writer, p *plans.Plan, o textOptions) error {
	ew := &errWriter{w: w}
	pal := palette(o.Color)
	pending := sortedPending(p)
	checks := checksToRun(p)
	same := unchanged(p)

	title := "haplan plan"
	if p.Cluster != "" {
		title += " for cluster " + p.Cluster
	}
	if p.Partial {
		title += " (partial: targeted steps only)"
	}
	ew.printf("%s\n\n", pal.wrap(ansiBold, title))

	if len(pending) > 0 {
		ew.printf("haplan will perform the following actions:\n\n")
		width := 0
		for _, c := range pending {
			width = max(width, len(c.Addr))
		}
		for _, c := range pending {
			line := fmt.Sprintf("  %s %-*s  %s", c.Action.Symbol(), width, c.Addr, oneLine(c.Reason))
			ew.printf("%s\n", pal.action(c.Action, strings.TrimRight(line, " ")))
		}
		ew.printf("\n")
	}

	if len(checks) > 0 {
		ew.printf("Checks that will run:\n\n")
		for _, c := range checks {
			ew.printf("%s\n", strings.TrimRight("  ? "+c.Addr+"  "+oneLine(c.Reason), " "))
		}
		ew.printf("\n")
	}

	if o.ShowUnchanged && len(same) > 0 {
		ew.printf("Unchanged:\n\n")
		for _, c := range same {
			ew.printf("%s\n", pal.wrap(ansiDim, strings.TrimRight("    "+c.Addr+"  "+oneLine(c.Reason), " ")))
		}
		ew.printf("\n")
	}

	writeDetails(ew, pal, pending)

	if ws := p.Warnings(); len(ws) > 0 {
		ew.printf("%s\n\n", pal.wrap(ansiYellow, "Warnings:"))
		for _, s := range ws {
			ew.printf("  ! %s\n", oneLine(s))
		}
		ew.printf("\n")
	}

	if !o.ShowUnchanged && len(same) > 0 {
		ew.printf("%s\n", pal.wrap(ansiDim, fmt.Sprintf("%d unchanged %s hidden (--show-unchanged lists them).", len(same), plural(len(same), "step", "steps"))))
	}
	ew.printf("%s\n", pal.wrap(ansiBold, p.SummaryLine()))
	return ew.err
}

// writeDetails lists the attribute-level details of the pending changes
// that have any.
func writeDetails(ew *errWriter, pal palette, pending []plans.Change) {
	var withDetails []plans.Change
	for _, c := range pending {
		if len(c.Details) > 0 {
			withDetails = append(withDetails, c)
		}
	}
	if len(withDetails) > 0 {
		ew.printf("Details:\n\n")
		for _, c := range withDetails {
			head := "  " + c.Action.Symbol() + " " + c.Addr
			if c.Host != "" {
				head += " (on " + c.Host + ")"
			}
			ew.printf("%s\n", pal.action(c.Action, head))
			for _, d := range c.Details {
				ew.printf("      %s\n", oneLine(detailLine(d)))
				for _, l := range d.Diff {
					ew.printf("        %s\n", pal.diffLine(l))
				}
			}
			ew.printf("\n")
		}
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// errWriter keeps the first write error so renderers read as straight-line
// code and report it once.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err != nil {
		return
	}
	_, e.err = fmt.Fprintf(e.w, format, args...)
}
