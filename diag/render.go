package diag

import (
	"bytes"
	"fmt"
	"io"
	"strings"
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
// are separated by a blank line. It returns the first write error.
func Render(w io.Writer, ds Diagnostics, sources map[string][]byte) error {
	ew := &errWriter{w: w}
	for i, d := range ds {
		if i > 0 {
			ew.printf("\n")
		}
		renderOne(ew, d, sources)
	}
	return ew.err
}

// RenderCompact writes one Compact line per diagnostic.
func RenderCompact(w io.Writer, ds Diagnostics) error {
	ew := &errWriter{w: w}
	for _, d := range ds {
		ew.printf("%s\n", d.Compact())
	}
	return ew.err
}

func renderOne(w *errWriter, d Diagnostic, sources map[string][]byte) {
	title := "Error"
	if d.Severity == Warning {
		title = "Warning"
	}
	w.printf("%s: %s\n", title, d.Summary)
	switch {
	case d.Subject != nil:
		r := d.Subject
		in := ""
		if d.Path != "" {
			in = ", in " + d.Path
		}
		w.printf("\n  on %s line %d, column %d%s:\n", r.Filename, r.Start.Line, r.Start.Column, in)
		if line, ok := sourceLine(sources[r.Filename], r.Start.Line); ok {
			prefix := fmt.Sprintf("  %d: ", r.Start.Line)
			w.printf("%s%s\n", prefix, line)
			w.printf("%s%s^\n", strings.Repeat(" ", len(prefix)), padding(line, r.Start.Column))
		}
	case d.Path != "":
		w.printf("\n  in %s\n", d.Path)
	}
	if d.Detail != "" {
		w.printf("%s\n", strings.TrimRight(d.Detail, "\n"))
	}
}

// sourceLine returns line n (1-based) of src without its line ending.
func sourceLine(src []byte, n int) (string, bool) {
	if src == nil || n < 1 {
		return "", false
	}
	for i := 1; i < n; i++ {
		j := bytes.IndexByte(src, '\n')
		if j < 0 {
			return "", false
		}
		src = src[j+1:]
	}
	if j := bytes.IndexByte(src, '\n'); j >= 0 {
		src = src[:j]
	}
	return strings.TrimRight(string(src), "\r"), true
}

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
