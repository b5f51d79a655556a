package manifests

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/haplan/haplan/diag"
)

// Hostile input never reaches a parser that could blow up on it: every
// file is read with a size limit (readRegular), must be UTF-8 text
// (checkText), and each format is pre-scanned in linear time for what
// its parser handles badly (prescanYAML, prescanHCL): nesting, mappings
// with thousands of keys, huge number literals, expressions.

const (
	// maxManifest bounds a manifest: a few thousand inline hosts are a
	// few hundred KB; more belong in a hostsFile (maxHostsFile, read by
	// haplan's own linear parser). Up to it, any manifest is answered in
	// about a second and 200 MB.
	maxManifest = 1 << 20
	// maxKeys bounds the keys of one mapping (go-yaml's parser is
	// quadratic in them); no mapping of a manifest needs a hundred.
	maxKeys = 1000
	// maxItems bounds the items of one list: hosts beyond that go in a
	// hostsFile.
	maxItems = 20000
)

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// checkText strips a UTF-8 byte order mark (Notepad writes one) and
// refuses what is not UTF-8 text with one diagnostic: UTF-16 or UTF-32
// (by their byte order marks or NUL bytes), binary data, invalid UTF-8,
// and a manifest with nothing in it.
func checkText(filename string, src []byte, what string) ([]byte, diag.Diagnostics) {
	src = bytes.TrimPrefix(src, utf8BOM)
	fail := func(line, col int, summary, detail string) ([]byte, diag.Diagnostics) {
		r := diag.Range{Filename: filename, Start: diag.Pos{Line: line, Column: col}, End: diag.Pos{Line: line, Column: col}}
		return nil, diag.Diagnostics{{Severity: diag.Error, Summary: summary, Detail: detail, Subject: &r}}
	}
	switch {
	case bytes.HasPrefix(src, []byte{0xFF, 0xFE}), bytes.HasPrefix(src, []byte{0xFE, 0xFF}):
		return fail(1, 1, fmt.Sprintf("the %s is UTF-16 text", what), "Save it as UTF-8.")
	}
	line, col := 1, 1
	for i := 0; i < len(src); {
		r, size := utf8.DecodeRune(src[i:])
		switch {
		case r == 0:
			if len(src) >= 2 && (src[0] == 0 || src[1] == 0) {
				return fail(1, 1, fmt.Sprintf("the %s is UTF-16 or UTF-32 text", what), "Save it as UTF-8.")
			}
			return fail(line, col, fmt.Sprintf("the %s is not text: a NUL byte at line %d, column %d", what, line, col), "Is it a binary file?")
		case r == utf8.RuneError && size == 1:
			return fail(line, col, fmt.Sprintf("the %s is not UTF-8: byte 0x%02x at line %d, column %d", what, src[i], line, col), "Save it as UTF-8.")
		case r == '\n':
			line, col = line+1, 1
		default:
			col += size
		}
		i += size
	}
	return src, nil
}

// emptyManifest reports a manifest with nothing but blanks and comments.
func emptyManifest(filename string, src []byte) diag.Diagnostics {
	for _, l := range bytes.Split(src, []byte("\n")) {
		t := bytes.TrimSpace(l)
		if len(t) > 0 && t[0] != '#' && !bytes.HasPrefix(t, []byte("//")) && !bytes.Equal(t, []byte("---")) {
			return nil
		}
	}
	r := diag.Range{Filename: filename, Start: diag.Pos{Line: 1, Column: 1}, End: diag.Pos{Line: 1, Column: 1}}
	return diag.Diagnostics{{Severity: diag.Error, Summary: "the manifest is empty",
		Detail: "Start from examples/minimal.yaml, or examples/cluster.yaml with every field explained.", Subject: &r}}
}

// scanPos is a position the pre-scans report.
type scanPos struct{ line, col int }

func (p scanPos) diag(filename, summary, detail string) diag.Diagnostics {
	r := diag.Range{Filename: filename, Start: diag.Pos{Line: p.line, Column: p.col}, End: diag.Pos{Line: p.line, Column: p.col + 1}}
	return diag.Diagnostics{{Severity: diag.Error, Summary: summary, Detail: detail, Subject: &r}}
}

// prescanYAML finds, in one pass and before go-yaml parses anything, flow
// collections ([ ], { }) and block collections (by indentation and "- ")
// nested deeper than maxDepth, block mappings with more than maxKeys keys
// and collections with more than maxItems items. It skips quoted scalars,
// comments and block scalars' text; it may over-count brackets in plain
// scalars, which no manifest nests 64 deep.
func prescanYAML(filename string, src []byte) diag.Diagnostics {
	type level struct {
		indent int
		keys   int // block mapping keys at this indentation
		items  int // "- " items at this indentation
	}
	var block []level
	var flow []int // items of each open flow collection
	var quote byte
	blockScalar := -1 // indentation of the line that opened a block scalar
	for ln, line := range bytes.Split(src, []byte("\n")) {
		pos := func(i int) scanPos { return scanPos{ln + 1, i + 1} }
		indent := 0
		for indent < len(line) && line[indent] == ' ' {
			indent++
		}
		rest := bytes.TrimRight(line[indent:], " \t\r")
		if blockScalar >= 0 {
			if len(rest) == 0 || indent > blockScalar {
				continue
			}
			blockScalar = -1
		}
		if quote == 0 && len(flow) == 0 && len(rest) > 0 && rest[0] != '#' {
			// A new line in block context: pop deeper levels.
			for len(block) > 0 && block[len(block)-1].indent > indent {
				block = block[:len(block)-1]
			}
			if len(block) == 0 || block[len(block)-1].indent < indent {
				block = append(block, level{indent: indent})
			}
			at := indent
			for bytes.HasPrefix(rest[at-indent:], []byte("- ")) || bytes.HasPrefix(rest[at-indent:], []byte("-\t")) || bytes.Equal(rest[at-indent:], []byte("-")) {
				top := &block[len(block)-1]
				top.items++
				if top.items > maxItems {
					return pos(at).diag(filename, fmt.Sprintf("a list with more than %d items", maxItems), "Put that many hosts in a hostsFile.")
				}
				at += 2
				block = append(block, level{indent: at})
				if len(block) > maxDepth {
					return pos(at).diag(filename, fmt.Sprintf("nesting deeper than %d levels", maxDepth), "")
				}
				if at-indent >= len(rest) {
					break
				}
			}
			if isKeyLine(rest[min(at-indent, len(rest)):]) {
				top := &block[len(block)-1]
				top.keys++
				if top.keys > maxKeys {
					return pos(at).diag(filename, fmt.Sprintf("a mapping with more than %d keys", maxKeys), "")
				}
			}
			if len(block) > maxDepth {
				return pos(indent).diag(filename, fmt.Sprintf("nesting deeper than %d levels", maxDepth), "")
			}
		}
		colons := 0 // "key: " on one block line: each nests a mapping
		for i := indent; i < len(line); i++ {
			c := line[i]
			if c == ':' && quote == 0 && len(flow) == 0 && (i+1 == len(line) || line[i+1] == ' ') {
				if colons++; len(block)+colons > maxDepth {
					return pos(i).diag(filename, fmt.Sprintf("nesting deeper than %d levels", maxDepth), "")
				}
			}
			switch {
			case quote == '\'':
				if c == '\'' {
					quote = 0 // '' is an escaped quote: it reopens at once
				}
			case quote == '"':
				if c == '\\' {
					i++
				} else if c == '"' {
					quote = 0
				}
			case c == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t'):
				i = len(line)
			case c == '\'' || c == '"':
				// A quoted scalar starts where a scalar can: first on the
				// line, or after ':', '-', '?', '[', '{' or ',' (and
				// blanks). A quote inside a plain scalar ("it's") is text.
				j := i - 1
				for j >= 0 && (line[j] == ' ' || line[j] == '\t') {
					j--
				}
				if j < indent || bytes.IndexByte([]byte("[{,:-?"), line[j]) >= 0 {
					quote = c
				}
			case c == '[' || c == '{':
				flow = append(flow, 0)
				if len(block)+len(flow) > maxDepth {
					return pos(i).diag(filename, fmt.Sprintf("nesting deeper than %d levels", maxDepth), "")
				}
			case c == ']' || c == '}':
				if len(flow) > 0 {
					flow = flow[:len(flow)-1]
				}
			case c == ',' && len(flow) > 0:
				flow[len(flow)-1]++
				if flow[len(flow)-1] >= maxItems {
					return pos(i).diag(filename, fmt.Sprintf("a list or mapping with more than %d items", maxItems), "")
				}
			case (c == '|' || c == '>') && len(flow) == 0 && (i == indent || line[i-1] == ' '):
				if tail := bytes.TrimLeft(line[i+1:], "+-0123456789 "); len(tail) == 0 || tail[0] == '#' {
					blockScalar = indent
					i = len(line)
				}
			}
		}
	}
	return nil
}

// isKeyLine reports a block line that starts a mapping entry: "key:"
// followed by a space or the end of the line, outside quotes.
func isKeyLine(s []byte) bool {
	if len(s) == 0 || s[0] == '#' || s[0] == '[' || s[0] == '{' {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ':':
			if i+1 == len(s) || s[i+1] == ' ' {
				return true
			}
		case '#':
			if i > 0 && s[i-1] == ' ' {
				return false
			}
		case '"', '\'':
			if i == 0 {
				if j := bytes.IndexByte(s[1:], s[0]); j >= 0 {
					i = j + 1
				}
			}
		}
	}
	return false
}

// maxNumberLit bounds an HCL number literal, in characters and in its
// exponent: hclsyntax converts it to a big.Float while parsing, and
// 1e100000000 takes for ever.
const maxNumberLit = 40

// prescanHCL lexes src (linear, no parsing) and refuses, before the parser
// sees them, number literals longer than maxNumberLit, brackets nested
// deeper than maxDepth, and template interpolations and directives:
// a manifest holds values, and nothing in it is evaluated.
func prescanHCL(filename string, src []byte) diag.Diagnostics {
	toks, _ := hclsyntax.LexConfig(src, filename, hcl.InitialPos)
	depth, blocks := 0, 0
	lines := newLineIndex(src)
	at := func(t hclsyntax.Token) scanPos {
		p := lines.fromByte(t.Range.Start.Byte)
		return scanPos{p.Line, p.Column}
	}
	for i, t := range toks {
		switch t.Type {
		case hclsyntax.TokenNumberLit:
			exp := 0
			if i := bytes.IndexAny(t.Bytes, "eE"); i >= 0 {
				digits := bytes.TrimLeft(t.Bytes[i+1:], "+-")
				if len(digits) > 3 {
					exp = maxNumberLit + 1
				} else {
					exp, _ = strconv.Atoi(string(digits))
				}
			}
			if len(t.Bytes) > maxNumberLit || exp > maxNumberLit {
				return at(t).diag(filename, fmt.Sprintf("the number %.20s is out of range", t.Bytes), "Ports, sizes and counts are small whole numbers.")
			}
		case hclsyntax.TokenOBrace, hclsyntax.TokenOBrack, hclsyntax.TokenOParen, hclsyntax.TokenOQuote, hclsyntax.TokenOHeredoc:
			if depth == 0 && t.Type == hclsyntax.TokenOBrace {
				if blocks++; blocks > maxItems {
					return at(t).diag(filename, fmt.Sprintf("more than %d blocks", maxItems), "Put that many hosts in a hostsFile.")
				}
			}
			depth++
			if depth > maxDepth {
				return at(t).diag(filename, fmt.Sprintf("nesting deeper than %d levels", maxDepth), "")
			}
		case hclsyntax.TokenCBrace, hclsyntax.TokenCBrack, hclsyntax.TokenCParen, hclsyntax.TokenCQuote, hclsyntax.TokenCHeredoc:
			if depth > 0 {
				depth--
			}
		case hclsyntax.TokenBang, hclsyntax.TokenStar, hclsyntax.TokenQuestion, hclsyntax.TokenEllipsis,
			hclsyntax.TokenPlus, hclsyntax.TokenSlash, hclsyntax.TokenPercent, hclsyntax.TokenAnd, hclsyntax.TokenOr:
			// Operators are never values; a long chain of them would
			// recurse in the parser.
			return at(t).diag(filename, fmt.Sprintf("the operator %q is not supported", t.Bytes),
				"A manifest holds plain values: nothing in it is evaluated.")
		case hclsyntax.TokenMinus:
			if i+1 >= len(toks) || toks[i+1].Type != hclsyntax.TokenNumberLit {
				return at(t).diag(filename, "a '-' that is not the sign of a number",
					"A manifest holds plain values: nothing in it is evaluated.")
			}
		case hclsyntax.TokenTemplateInterp, hclsyntax.TokenTemplateControl:
			return at(t).diag(filename, "template interpolations and directives are not supported",
				"A manifest holds plain values: nothing in it is evaluated. Write $${ or %{ for a literal ${ or %{.")
		}
	}
	return nil
}

// lineBreaks refuses keys and values that hold a line break or a NUL:
// every value of a manifest ends up on one line of a command, a file or
// a label, where a line break starts something else (certificates and
// keys are read from files, never written inline).
func lineBreaks(n *node) diag.Diagnostics {
	var out diag.Diagnostics
	var walk func(n *node, depth int)
	walk = func(n *node, depth int) {
		if n == nil || depth > maxDepth {
			return
		}
		bad := func(s string) bool { return strings.ContainsAny(s, "\n\r\x00") }
		for _, e := range n.entries {
			if bad(e.key) {
				r := e.keyRng
				out = append(out, diag.Diagnostic{Severity: diag.Error, Summary: fmt.Sprintf("the key %+q holds a line break", e.key), Subject: &r})
			}
			walk(e.val, depth+1)
		}
		for _, it := range n.items {
			walk(it, depth+1)
		}
		if n.kind == kindString && bad(n.text) {
			r := n.rng
			out = append(out, diag.Diagnostic{Severity: diag.Error, Summary: "a value holds a line break",
				Detail: "Every value goes on one line: haplan puts values into commands, files and labels, where a line break starts something else. Certificates and keys are read from files ({file: PATH}).", Subject: &r})
		}
	}
	walk(n, 0)
	return out
}
