package main

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/haplan/haplan/plans"
)

// maxMarkdown is GitHub's limit on a comment body (65,535 characters). The
// view measures bytes, which are never fewer than characters, and keeps a
// margin for whatever a CI step wraps around the comment.
const maxMarkdown = 65535 - 1024

// renderMarkdown writes the plan as a pull-request comment. It always fits
// under GitHub's limit: when the full rendering would not, it drops the
// per-host details, then the per-step table (replaced by counts per kind and
// per host), always whole lines and always with a note saying what was left
// out and how to see it.
func renderMarkdown(w io.Writer, p *plans.Plan) error {
	_, err := io.WriteString(w, markdown(p, maxMarkdown))
	return err
}

// markdown returns the comment body, at most limit bytes long.
func markdown(p *plans.Plan, limit int) string {
	head := mdHeader(p)
	tail := mdTail(p)
	pending := sortedPending(p)
	if len(pending) == 0 {
		return fitLines(head+tail, limit)
	}
	table := mdTable(pending)
	details := mdDetails(pending)

	full := head + table + details + tail
	if len(full) <= limit {
		return full
	}
	const noDetails = "> Details per host were left out to stay under GitHub's comment size limit; run `haplan plan` to see them.\n"
	if s := head + noDetails + "\n" + table + tail; len(s) <= limit {
		return s
	}
	const noTable = "> The plan is too long for one comment: this is a summary by kind and host. Run `haplan plan` (or `haplan plan --json`) for every change.\n"
	counts := mdCountsByKind(pending)
	if s := head + noTable + "\n" + counts + mdCountsByHost(pending) + tail; len(s) <= limit {
		return s
	}
	return fitLines(head+noTable+"\n"+counts+tail, limit)
}

func mdHeader(p *plans.Plan) string {
	var b strings.Builder
	title := "haplan plan"
	if p.Cluster != "" {
		title += " for `" + mdCode(p.Cluster) + "`"
	}
	fmt.Fprintf(&b, "### %s: %s\n\n", title, p.SummaryLine())
	if p.Partial {
		b.WriteString("> **Partial plan**: only the targeted steps and what they depend on.\n\n")
	}
	return b.String()
}

func mdTable(pending []plans.Change) string {
	var b strings.Builder
	b.WriteString("| | Step | Host | Reason |\n|---|---|---|---|\n")
	for _, c := range pending {
		fmt.Fprintf(&b, "| %s | `%s` | %s | %s |\n", c.Action.Symbol(), mdCode(c.Addr), mdCell(c.Host), mdCell(c.Reason))
	}
	return b.String()
}

// mdDetails groups the changes by host, each host inside a collapsed
// <details> block. Changes without a host are grouped as "(local)".
func mdDetails(pending []plans.Change) string {
	byHost := map[string][]plans.Change{}
	for _, c := range pending {
		byHost[c.Host] = append(byHost[c.Host], c)
	}
	hosts := make([]string, 0, len(byHost))
	for h := range byHost {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	var b strings.Builder
	for _, h := range hosts {
		cs := byHost[h]
		name := h
		if name == "" {
			name = "(local)"
		}
		fmt.Fprintf(&b, "\n<details><summary>%s (%d %s)</summary>\n\n", mdHTML(name), len(cs), plural(len(cs), "change", "changes"))
		for _, c := range cs {
			fmt.Fprintf(&b, "- `%s %s`", c.Action.Symbol(), mdCode(c.Addr))
			if r := oneLine(c.Reason); r != "" {
				fmt.Fprintf(&b, ": %s", mdInline(r))
			}
			b.WriteString("\n")
			for _, d := range c.Details {
				fmt.Fprintf(&b, "  - %s\n", mdInline(oneLine(detailLine(d))))
				if len(d.Diff) > 0 {
					// A fence longer than any run of backticks inside.
					fence := "```" + strings.Repeat("`", maxBackticks(d.Diff))
					fmt.Fprintf(&b, "\n    %sdiff\n", fence)
					for _, l := range d.Diff {
						fmt.Fprintf(&b, "    %s\n", l)
					}
					fmt.Fprintf(&b, "    %s\n\n", fence)
				}
			}
		}
		b.WriteString("\n</details>\n")
	}
	return b.String()
}

func mdCountsByKind(pending []plans.Change) string {
	type key struct {
		a    plans.Action
		kind string
	}
	counts := map[key]int{}
	for _, c := range pending {
		counts[key{c.Action, kindOf(c)}]++
	}
	keys := make([]key, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].a != keys[j].a {
			return keys[i].a < keys[j].a
		}
		return keys[i].kind < keys[j].kind
	})
	var b strings.Builder
	b.WriteString("| | Kind | Steps |\n|---|---|---|\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "| %s | `%s` | %d |\n", k.a.Symbol(), mdCode(k.kind), counts[k])
	}
	return b.String()
}

func mdCountsByHost(pending []plans.Change) string {
	counts := map[string]int{}
	for _, c := range pending {
		counts[c.Host]++
	}
	hosts := make([]string, 0, len(counts))
	for h := range counts {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	var b strings.Builder
	fmt.Fprintf(&b, "\n<details><summary>Changes per host (%d %s)</summary>\n\n| Host | Changes |\n|---|---|\n", len(hosts), plural(len(hosts), "host", "hosts"))
	for _, h := range hosts {
		name := h
		if name == "" {
			name = "(local)"
		}
		fmt.Fprintf(&b, "| %s | %d |\n", mdCell(name), counts[h])
	}
	b.WriteString("\n</details>\n")
	return b.String()
}

func mdTail(p *plans.Plan) string {
	var b strings.Builder
	if ws := p.Warnings(); len(ws) > 0 {
		b.WriteString("\n**Warnings**\n\n")
		for _, s := range ws {
			fmt.Fprintf(&b, "- %s\n", mdInline(oneLine(s)))
		}
	}
	if checks := checksToRun(p); len(checks) > 0 {
		b.WriteString("\n**Checks that will run**: ")
		names := make([]string, len(checks))
		for i, c := range checks {
			names[i] = "`" + mdCode(c.Addr) + "`"
		}
		b.WriteString(strings.Join(names, ", ") + "\n")
	}
	fmt.Fprintf(&b, "\n%s\n", p.SummaryLine())
	return b.String()
}

// fitLines keeps whole lines of s while they fit in limit bytes, and ends
// with a note when it dropped any. It is the last resort for pathological
// plans (a reason of many kilobytes); it never cuts a line in two.
func fitLines(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	const note = "\n> (output shortened to fit a comment; run `haplan plan` for the full plan)\n"
	var b strings.Builder
	for _, line := range strings.SplitAfter(s, "\n") {
		if b.Len()+len(line)+len(note) > limit {
			break
		}
		b.WriteString(line)
	}
	b.WriteString(note)
	return b.String()
}

func kindOf(c plans.Change) string {
	if c.Kind != "" {
		return c.Kind
	}
	return plans.Kind(c.Addr)
}

// mdCell makes s safe inside a table cell: one line, pipes escaped.
func mdCell(s string) string {
	return mdInline(strings.ReplaceAll(oneLine(s), "|", `\|`))
}

// mdInline escapes what would turn text into HTML or break out of a line.
func mdInline(s string) string {
	return mdHTML(strings.ReplaceAll(oneLine(s), " -> ", " → "))
}

func mdHTML(s string) string {
	return strings.NewReplacer("<", "&lt;", ">", "&gt;").Replace(s)
}

// mdCode makes s safe inside a single-backtick code span.
func mdCode(s string) string {
	return strings.ReplaceAll(oneLine(s), "`", "'")
}

// maxBackticks is the longest run of backticks in lines.
func maxBackticks(lines []string) int {
	best := 0
	for _, l := range lines {
		run := 0
		for _, c := range l {
			if c == '`' {
				run++
				best = max(best, run)
			} else {
				run = 0
			}
		}
	}
	return best
}
