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
	// opts are the line's key=value fields, in order.
	opts []hostsFileOpt
}

// hostsFileOpt is one "key=value" field: register, environment, agentIP,
// or label.KEY.
type hostsFileOpt struct {
	key, value string
	rng        diag.Range
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
		all, allCols := fieldsWithOffsets(text)
		// Fields with '=' are options; the others name the machine.
		var fields []string
		var cols []int
		var opts []hostsFileOpt
		for k, fld := range all {
			r := diag.Range{Filename: filename, Start: lines.fromByte(start + allCols[k]), End: lines.fromByte(start + allCols[k] + len(fld))}
			if key, val, ok := strings.Cut(fld, "="); ok {
				opts = append(opts, hostsFileOpt{key: key, value: val, rng: r})
				continue
			}
			fields, cols = append(fields, fld), append(cols, allCols[k])
		}
		rng := func(k int) diag.Range {
			return diag.Range{Filename: filename, Start: lines.fromByte(start + cols[k]),
				End: lines.fromByte(start + cols[k] + len(fields[k]))}
		}
		switch len(fields) {
		case 0:
			if len(opts) > 0 {
				r := opts[0].rng
				diags = diags.Append(diag.Diagnostic{Severity: diag.Error,
					Summary: fmt.Sprintf("hosts file line %d has options but no address", i+1),
					Detail:  hostsFileHelp, Subject: &r})
			}
			continue
		case 1:
			out = append(out, hostsFileEntry{name: fields[0], address: fields[0], nameRng: rng(0), addressRng: rng(0), lineRng: rng(0), opts: opts})
		case 2:
			out = append(out, hostsFileEntry{name: fields[0], address: fields[1], nameRng: rng(0), addressRng: rng(1), lineRng: rng(0), opts: opts})
		default:
			r := rng(2)
			diags = diags.Append(diag.Diagnostic{Severity: diag.Error,
				Summary: fmt.Sprintf("hosts file line %d has %d fields, want \"address\" or \"name address\"", i+1, len(fields)),
				Detail:  hostsFileHelp, Subject: &r})
		}
	}
	return out, diags
}

// hostsFileHelp is the format, for diagnostics.
const hostsFileHelp = "A line is \"address\" or \"name address\", then options: register=false, environment=NAME, agentIP=IP, label.KEY=VALUE. Start a comment with '#'."

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

// applyHostsFileOpts sets the options of a hosts-file line on h, recording
// each option's position under path (e.g. "hostsFile[3].labels.zone").
func applyHostsFileOpts(h *Host, opts []hostsFileOpt, path string, pos map[string]diag.Range, line int) diag.Diagnostics {
	var diags diag.Diagnostics
	bad := func(o hostsFileOpt, summary string) {
		r := o.rng
		diags = diags.Append(diag.Diagnostic{Severity: diag.Error, Summary: fmt.Sprintf("hosts file line %d: %s", line, summary), Detail: hostsFileHelp, Subject: &r})
	}
	seen := map[string]bool{}
	for _, o := range opts {
		if seen[o.key] {
			bad(o, fmt.Sprintf("option %q given twice", o.key))
			continue
		}
		seen[o.key] = true
		switch {
		case o.key == "register":
			pos[path+".register"] = o.rng
			switch o.value {
			case "true":
				h.Register = true
			case "false":
				h.Register = false
			default:
				bad(o, fmt.Sprintf("register must be true or false, not %q", o.value))
			}
		case o.key == "environment":
			pos[path+".environment"] = o.rng
			h.Environment = o.value
		case o.key == "agentIP":
			pos[path+".agentIP"] = o.rng
			h.AgentIP = o.value
		case strings.HasPrefix(o.key, "label."):
			k := strings.TrimPrefix(o.key, "label.")
			pos[path+".labels."+k] = o.rng
			if h.Labels == nil {
				h.Labels = map[string]string{}
			}
			h.Labels[k] = o.value
		default:
			known := []string{"register", "environment", "agentIP", "label.KEY"}
			msg := fmt.Sprintf("unknown option %q", o.key)
			if sg := suggest(o.key, known[:3]); sg != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", sg)
			}
			bad(o, msg)
		}
	}
	return diags
}
