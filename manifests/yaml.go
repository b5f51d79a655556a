package manifests

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"

	"github.com/haplan/haplan/diag"
)

// maxDepth bounds nesting so hostile input cannot exhaust the stack.
const maxDepth = 64

// parseYAML turns YAML source into a node tree. A document without content
// yields a null node.
func parseYAML(filename string, src []byte) (*node, diag.Diagnostics) {
	lines := newLineIndex(src)
	f, err := parser.ParseBytes(lfOnly(src), 0)
	if err != nil {
		return nil, diag.Diagnostics{yamlSyntaxDiag(filename, lines, err)}
	}
	c := &yamlConv{file: filename, lines: lines}
	var docs []*ast.DocumentNode
	for _, d := range f.Docs {
		if d != nil && d.Body != nil {
			docs = append(docs, d)
		}
	}
	if len(docs) == 0 {
		return &node{kind: kindNull, rng: c.lines.rangeAt(filename, 1, 1, 0)}, nil
	}
	if len(docs) > 1 {
		r := c.tokRange(startToken(docs[1].Body), 1)
		c.diags = c.diags.Append(diag.Diagnostic{
			Severity: diag.Error, Summary: "more than one YAML document",
			Detail: "A manifest describes one cluster: remove the extra \"---\" section.", Subject: &r,
		})
	}
	n := c.conv(docs[0].Body, 0)
	return n, c.diags
}

// lfOnly is src with its CRLF line breaks as LF, which YAML says they
// are (1.2, 5.4: line breaks are normalised): go-yaml keeps the break of
// a quoted scalar folded across CRLF lines as a line break instead of
// folding it into a space. Lines and columns stay those of src (the CR
// ends a line), so diagnostics point into the file as written.
func lfOnly(src []byte) []byte {
	if !bytes.Contains(src, []byte("\r\n")) {
		return src
	}
	return bytes.ReplaceAll(src, []byte("\r\n"), []byte("\n"))
}

func yamlSyntaxDiag(filename string, lines lineIndex, err error) diag.Diagnostic {
	d := diag.Diagnostic{Severity: diag.Error, Summary: "YAML syntax error: " + err.Error()}
	var ye yaml.Error
	if errors.As(err, &ye) {
		d.Summary = "YAML syntax error: " + ye.GetMessage()
		if tk := ye.GetToken(); tk != nil && tk.Position != nil {
			r := lines.rangeAt(filename, tk.Position.Line, tk.Position.Column, 1)
			d.Subject = &r
		}
	}
	if d.Subject == nil {
		r := lines.rangeAt(filename, 1, 1, 0)
		d.Subject = &r
	}
	return d
}

type yamlConv struct {
	file  string
	lines lineIndex
	diags diag.Diagnostics
}

func (c *yamlConv) errorf(r diag.Range, detail, format string, args ...any) {
	c.diags = c.diags.Append(diag.Diagnostic{
		Severity: diag.Error, Summary: fmt.Sprintf(format, args...), Detail: detail, Subject: &r,
	})
}

func (c *yamlConv) tokRange(tk *token.Token, length int) diag.Range {
	if tk == nil || tk.Position == nil {
		return c.lines.rangeAt(c.file, 1, 1, 0)
	}
	return c.lines.rangeAt(c.file, tk.Position.Line, tk.Position.Column, length)
}

// scalarRange covers a scalar token, including its quotes when quoted.
func (c *yamlConv) scalarRange(tk *token.Token) diag.Range {
	if tk == nil {
		return c.tokRange(nil, 0)
	}
	n := len(tk.Value)
	if tk.Type == token.DoubleQuoteType || tk.Type == token.SingleQuoteType {
		n += 2
	}
	return c.tokRange(tk, n)
}

func (c *yamlConv) conv(n ast.Node, depth int) *node {
	if n == nil {
		return &node{kind: kindNull, rng: c.tokRange(nil, 0)}
	}
	if depth > maxDepth {
		c.errorf(c.tokRange(n.GetToken(), 1), "", "nesting deeper than %d levels", maxDepth)
		return &node{kind: kindNull, rng: c.tokRange(n.GetToken(), 1)}
	}
	switch v := n.(type) {
	case *ast.MappingNode:
		out := c.mapping(v, v.Values, depth)
		if v.IsFlowStyle && v.Start != nil {
			out.rng = c.tokRange(v.Start, 1)
		}
		return out
	case *ast.MappingValueNode:
		return c.mapping(v, []*ast.MappingValueNode{v}, depth)
	case *ast.SequenceNode:
		out := &node{kind: kindSeq, rng: c.tokRange(v.GetToken(), 1)}
		for _, it := range v.Values {
			out.items = append(out.items, c.conv(it, depth+1))
		}
		return out
	case *ast.NullNode:
		return &node{kind: kindNull, rng: c.scalarRange(v.Token)}
	case *ast.StringNode:
		return &node{kind: kindString, rng: c.scalarRange(v.Token), text: v.Value}
	case *ast.LiteralNode:
		return &node{kind: kindString, rng: c.tokRange(v.Start, 1), text: v.Value.Value}
	case *ast.IntegerNode:
		r := c.scalarRange(v.Token)
		if raw := v.Token.Value; !plainDecimal(raw) {
			c.errorf(r, fmt.Sprintf("Write it in decimal: YAML 1.1 reads a leading 0 as octal (022 is 18), and 0x, 0o, 0b and _ change it too. Quote it if it is a string (\"%s\").", raw),
				"the number %s is ambiguous", raw)
			return &node{kind: kindNull, rng: r}
		}
		return &node{kind: kindInt, rng: r, text: intText(v)}
	case *ast.FloatNode, *ast.InfinityNode, *ast.NanNode:
		tk := n.GetToken()
		return &node{kind: kindFloat, rng: c.scalarRange(tk), text: tk.Value}
	case *ast.BoolNode:
		return &node{kind: kindBool, rng: c.scalarRange(v.Token), text: strconv.FormatBool(v.Value)}
	case *ast.TagNode:
		// Tags change nothing here; the value is what counts.
		return c.conv(v.Value, depth+1)
	case *ast.AnchorNode:
		return c.conv(v.Value, depth+1)
	case *ast.AliasNode:
		r := c.tokRange(v.GetToken(), 1)
		c.errorf(r, "Write the value out: aliases make a manifest hard to review.", "YAML aliases are not supported")
		return &node{kind: kindNull, rng: r}
	default:
		r := c.tokRange(n.GetToken(), 1)
		c.errorf(r, "", "unsupported YAML construct (%s)", n.Type())
		return &node{kind: kindNull, rng: r}
	}
}

// plainDecimal reports an integer written as YAML 1.1 and 1.2 both read
// it: an optional sign, then 0 or digits without a leading zero.
func plainDecimal(s string) bool {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "-"), "+")
	if s == "" || (len(s) > 1 && s[0] == '0') {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func intText(v *ast.IntegerNode) string {
	switch x := v.Value.(type) {
	case int64:
		return strconv.FormatInt(x, 10)
	case uint64:
		return strconv.FormatUint(x, 10)
	}
	return v.Token.Value
}

func (c *yamlConv) mapping(n ast.Node, values []*ast.MappingValueNode, depth int) *node {
	out := &node{kind: kindMap, rng: c.tokRange(startToken(n), 1)}
	for _, mv := range values {
		if mv == nil || mv.Key == nil {
			continue
		}
		kt := mv.Key.GetToken()
		if _, ok := mv.Key.(*ast.MergeKeyNode); ok {
			c.errorf(c.tokRange(kt, 2), "Write the keys out: merge keys make a manifest hard to review.", "YAML merge keys (<<) are not supported")
			continue
		}
		key := strings.TrimSpace(mv.Key.String())
		if sk, ok := mv.Key.(*ast.StringNode); ok {
			key = sk.Value
		}
		var kr diag.Range
		if kt != nil {
			kr = c.scalarRange(kt)
		} else {
			kr = c.tokRange(nil, 0)
		}
		val := c.conv(mv.Value, depth+1)
		out.entries = append(out.entries, entry{key: key, keyRng: kr, val: val})
	}
	return out
}

// startToken is the first token of a node: a block mapping's first key
// rather than the ':' the parser hands out.
func startToken(n ast.Node) *token.Token {
	switch v := n.(type) {
	case *ast.MappingNode:
		if v.IsFlowStyle && v.Start != nil {
			return v.Start
		}
		if len(v.Values) > 0 && v.Values[0] != nil && v.Values[0].Key != nil {
			return v.Values[0].Key.GetToken()
		}
	case *ast.MappingValueNode:
		if v.Key != nil {
			return v.Key.GetToken()
		}
	}
	return n.GetToken()
}
