package diag

import (
	"fmt"
	"io"
	"strings"

	"github.com/haplan/haplan/internal/termsafe"
)

// Render writes every diagnostic terraform-style:
//
//	Error: unknown field "adress"
//
//	  on cluster.yaml line 12, column 5, in nodes[1]:
//	  12:     adress: 10.0.0.12
//	          ^
//	Did you mean "address"?
//
// sources maps a Range's Filename to the file's bytes; a diagnostic whose
// file is missing from sources is rendered without the snippet. Diagnostics
// are separated by a blank line. At most MaxRendered are written, then one
// line counts the rest. Text from the files (the snippet, and summaries
// and details that quote it) is written with control characters and
// bidirectional overrides escaped (Visible): a manifest from a pull
// request must not drive the reader's terminal. It returns the first write
// error.
func Render(w io.Writer, ds Diagnostics, sources map[string][]byte) error {
	ew := &errWriter{w: w}
	idx := lineIndexes{sources: sources}
	for i, d := range ds {
		if i == MaxRendered {
			ew.printf("\n%s\n", moreLine(ds[i:]))
			break
		}
		if i > 0 {
			ew.printf("\n")
		}
		renderOne(ew, d, &idx)
	}
	return ew.err
}

// MaxRendered is how many diagnostics Render writes in full.
const MaxRendered = 50

// moreLine counts the diagnostics Render leaves out.
func moreLine(rest Diagnostics) string {
	errs := len(rest.Errors())
	warns := len(rest) - errs
	var parts []string
	if errs > 0 {
		parts = append(parts, plural(errs, "more error"))
	}
	if warns > 0 {
		parts = append(parts, plural(warns, "more warning"))
	}
	return fmt.Sprintf("… and %s, not shown (the JSON output lists every one).", strings.Join(parts, " and "))
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// RenderCompact writes one Compact line per diagnostic.
func RenderCompact(w io.Writer, ds Diagnostics) error {
	ew := &errWriter{w: w}
	for _, d := range ds {
		ew.printf("%s\n", Visible(d.Compact()))
	}
	return ew.err
}

func renderOne(w *errWriter, d Diagnostic, idx *lineIndexes) {
	title := "Error"
	if d.Severity == Warning {
		title = "Warning"
	}
	w.printf("%s: %s\n", title, Visible(d.Summary))
	switch {
	case d.Subject != nil:
		r := d.Subject
		in := ""
		if d.Path != "" {
			in = ", in " + Visible(d.Path)
		}
		w.printf("\n  on %s line %d, column %d%s:\n", Visible(r.Filename), r.Start.Line, r.Start.Column, in)
		if line, ok := idx.line(r.Filename, r.Start.Line); ok {
			prefix := fmt.Sprintf("  %d: ", r.Start.Line)
			col := r.Start.Column
			if col-1 > len(line) {
				col = len(line) + 1
			}
			before := Visible(line[:max(col-1, 0)])
			w.printf("%s%s\n", prefix, Visible(line))
			w.printf("%s%s^\n", strings.Repeat(" ", len(prefix)), padding(before, len(before)+1))
		}
	case d.Path != "":
		w.printf("\n  in %s\n", Visible(d.Path))
	}
	if d.Detail != "" {
		w.printf("%s\n", Visible(strings.TrimRight(d.Detail, "\n")))
	}
}

// lineIndexes finds source lines by number, each file's line starts
// computed once: thousands of diagnostics on one file stay linear.
type lineIndexes struct {
	sources map[string][]byte
	starts  map[string][]int
}

// line returns line n (1-based) of the named source without its line
// ending.
func (x *lineIndexes) line(file string, n int) (string, bool) {
	src, ok := x.sources[file]
	if !ok || src == nil || n < 1 {
		return "", false
	}
	if x.starts == nil {
		x.starts = map[string][]int{}
	}
	starts, ok := x.starts[file]
	if !ok {
		starts = []int{0}
		for i, b := range src {
			if b == '\n' {
				starts = append(starts, i+1)
			}
		}
		x.starts[file] = starts
	}
	if n > len(starts) {
		return "", false
	}
	end := len(src)
	if n < len(starts) {
		end = starts[n] - 1
	}
	return strings.TrimRight(string(src[starts[n-1]:end]), "\r"), true
}

// Visible escapes what must not reach a terminal raw (termsafe.Visible):
// control characters but tab, DEL, C1 controls, bidirectional overrides
// and isolates, invalid UTF-8.
func Visible(s string) string { return termsafe.Visible(s) }

// padding is the whitespace that puts a caret under column col (1-based,
// in bytes) of line: tabs are kept so the caret lines up however the
// terminal expands them.
func padding(line string, col int) string {
	var b strings.Builder
	for i := 0; i < col-1 && i < len(line); i++ {
		if line[i] == '\t' {
			b.WriteByte('\t')
		} else if line[i]&0xC0 != 0x80 { // one space per character, not per byte
			b.WriteByte(' ')
		}
	}
	if col-1 > len(line) {
		b.WriteString(strings.Repeat(" ", col-1-len(line)))
	}
	return b.String()
}

// errWriter remembers the first write error and skips later writes.
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
