package manifests

import (
	"fmt"
	"strings"

	"github.com/haplan/haplan/diag"
)

// hostsFileEntry is one line of a hosts file.
type hostsFileEntry struct {
	name, address       string
	nameRng, addressRng diag.Range
	lineRng             diag.Range
}

// parseHostsFile reads "address" or "name address" lines; '#' starts a
// comment and blank lines are skipped. Diagnostics point into the hosts
// file itself (filename is how it is shown).
func parseHostsFile(filename string, src []byte) ([]hostsFileEntry, diag.Diagnostics) {
	lines := newLineIndex(src)
	var out []hostsFileEntry
	var diags diag.Diagnostics
	off := 0
	for i, line := range strings.SplitAfter(string(src), "\n") {
		start := off
		off += len(line)
		text := strings.TrimRight(line, "\r\n")
		if j := strings.IndexByte(text, '#'); j >= 0 {
			text = text[:j]
		}
		fields, cols := fieldsWithOffsets(text)
		rng := func(k int) diag.Range {
			return diag.Range{Filename: filename, Start: lines.fromByte(start + cols[k]),
				End: lines.fromByte(start + cols[k] + len(fields[k]))}
		}
		switch len(fields) {
		case 0:
			continue
		case 1:
			out = append(out, hostsFileEntry{name: fields[0], address: fields[0], nameRng: rng(0), addressRng: rng(0), lineRng: rng(0)})
		case 2:
			out = append(out, hostsFileEntry{name: fields[0], address: fields[1], nameRng: rng(0), addressRng: rng(1), lineRng: rng(0)})
		default:
			r := rng(2)
			diags = diags.Append(diag.Diagnostic{Severity: diag.Error,
				Summary: fmt.Sprintf("hosts file line %d has %d fields, want \"address\" or \"name address\"", i+1, len(fields)),
				Detail:  "Start a comment with '#'.", Subject: &r})
		}
	}
	return out, diags
}

// fieldsWithOffsets splits on blanks and returns each field's byte offset.
func fieldsWithOffsets(s string) ([]string, []int) {
	var fields []string
	var offs []int
	i := 0
	for i < len(s) {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		j := i
		for j < len(s) && s[j] != ' ' && s[j] != '\t' {
			j++
		}
		if j > i {
			fields = append(fields, s[i:j])
			offs = append(offs, i)
		}
		i = j
	}
	return fields, offs
}
