package manifests

import (
	"fmt"
	"math/big"
	"sort"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/haplan/haplan/diag"
)

// The HCL form mirrors the YAML one: mappings are blocks (or object
// attributes), and the two lists of machines are repeated labelled blocks:
//
//	node "rs1" { address = "10.0.0.11" }
//	host "h1" { address = "10.0.1.1" }
//	host { address = "10.0.1.2" }
//
// Each becomes an item of "nodes" or "hosts" whose label is its "name".
func hclListBlock(blockType string) (string, bool) {
	switch blockType {
	case "node":
		return "nodes", true
	case "host":
		return "hosts", true
	}
	return "", false
}

// parseHCL turns HCL native syntax into a node tree.
func parseHCL(filename string, src []byte) (*node, diag.Diagnostics) {
	c := &hclConv{file: filename, lines: newLineIndex(src)}
	f, hd := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	if hd.HasErrors() {
		return nil, c.fromHCL(hd)
	}
	body, ok := f.Body.(*hclsyntax.Body)
	if !ok {
		return nil, diag.Diagnostics{{Severity: diag.Error, Summary: "unexpected HCL body"}}
	}
	n := c.body(body, nil, 0)
	n.rng = c.rng(hcl.Range{Filename: filename, Start: hcl.InitialPos, End: hcl.InitialPos})
	return n, c.diags
}

type hclConv struct {
	file  string
	lines lineIndex
	diags diag.Diagnostics
}

// rng converts an HCL range, recomputing columns in bytes.
func (c *hclConv) rng(r hcl.Range) diag.Range {
	return diag.Range{Filename: c.file, Start: c.lines.fromByte(r.Start.Byte), End: c.lines.fromByte(r.End.Byte)}
}

func (c *hclConv) errorf(r hcl.Range, detail, format string, args ...any) {
	dr := c.rng(r)
	c.diags = c.diags.Append(diag.Diagnostic{
		Severity: diag.Error, Summary: fmt.Sprintf(format, args...), Detail: detail, Subject: &dr,
	})
}

func (c *hclConv) fromHCL(hd hcl.Diagnostics) diag.Diagnostics {
	var out diag.Diagnostics
	for _, d := range hd {
		nd := diag.Diagnostic{Severity: diag.Error, Summary: "HCL: " + d.Summary, Detail: d.Detail}
		if d.Severity == hcl.DiagWarning {
			nd.Severity = diag.Warning
		}
		r := c.rng(hcl.Range{})
		if d.Subject != nil {
			r = c.rng(*d.Subject)
		}
		nd.Subject = &r
		out = append(out, nd)
	}
	return out
}

// body converts a block body; label, when set, becomes the "name" entry.
func (c *hclConv) body(b *hclsyntax.Body, label *hclsyntax.Block, depth int) *node {
	out := &node{kind: kindMap, rng: c.rng(b.SrcRange)}
	type item struct {
		at int
		e  entry
	}
	var items []item
	if label != nil && len(label.Labels) == 1 {
		lr := label.LabelRanges[0]
		items = append(items, item{lr.Start.Byte, entry{key: "name", keyRng: c.rng(lr),
			val: &node{kind: kindString, rng: c.rng(lr), text: label.Labels[0]}}})
	}
	for name, a := range b.Attributes {
		items = append(items, item{a.SrcRange.Start.Byte, entry{key: name, keyRng: c.rng(a.NameRange), val: c.expr(a.Expr, depth+1)}})
	}
	lists := map[string]*node{}
	for _, blk := range b.Blocks {
		if depth > maxDepth {
			c.errorf(blk.TypeRange, "", "nesting deeper than %d levels", maxDepth)
			continue
		}
		listKey, isList := hclListBlock(blk.Type)
		if isList && depth == 0 {
			if len(blk.Labels) > 1 {
				c.errorf(blk.LabelRanges[1], "", "a %s block takes at most one label, its name", blk.Type)
			}
			v := c.body(blk.Body, blk, depth+1)
			v.rng = c.rng(blk.TypeRange)
			l := lists[listKey]
			if l == nil {
				l = &node{kind: kindSeq, rng: c.rng(blk.TypeRange)}
				lists[listKey] = l
				items = append(items, item{blk.TypeRange.Start.Byte, entry{key: listKey, keyRng: c.rng(blk.TypeRange), val: l}})
			}
			l.items = append(l.items, v)
			continue
		}
		if len(blk.Labels) > 0 {
			detail := ""
			if depth == 0 {
				if s := suggest(blk.Type, []string{"node", "host"}); s != "" {
					detail = fmt.Sprintf("Did you mean %q?", s)
				}
			}
			c.errorf(blk.TypeRange, detail, "a %s block takes no labels", blk.Type)
			continue
		}
		v := c.body(blk.Body, nil, depth+1)
		v.rng = c.rng(blk.TypeRange)
		items = append(items, item{blk.TypeRange.Start.Byte, entry{key: blk.Type, keyRng: c.rng(blk.TypeRange), val: v}})
	}
	sort.SliceStable(items, func(i, j int) bool { return items[i].at < items[j].at })
	for _, it := range items {
		out.entries = append(out.entries, it.e)
	}
	return out
}

func (c *hclConv) expr(e hclsyntax.Expression, depth int) *node {
	r := e.Range()
	if depth > maxDepth {
		c.errorf(r, "", "nesting deeper than %d levels", maxDepth)
		return &node{kind: kindNull, rng: c.rng(r)}
	}
	switch x := e.(type) {
	case *hclsyntax.ObjectConsExpr:
		out := &node{kind: kindMap, rng: c.rng(r)}
		for _, it := range x.Items {
			key := hcl.ExprAsKeyword(it.KeyExpr)
			if key == "" {
				if k, ok := it.KeyExpr.(*hclsyntax.ObjectConsKeyExpr); !ok || !literalExpr(k.Wrapped) {
					c.errorf(it.KeyExpr.Range(), "", "object keys must be names or strings")
					continue
				}
				v, d := it.KeyExpr.Value(nil)
				if d.HasErrors() || v.IsNull() || !v.IsKnown() || v.Type() != cty.String {
					c.errorf(it.KeyExpr.Range(), "", "object keys must be names or strings")
					continue
				}
				key = v.AsString()
			}
			out.entries = append(out.entries, entry{key: key, keyRng: c.rng(it.KeyExpr.Range()), val: c.expr(it.ValueExpr, depth+1)})
		}
		return out
	case *hclsyntax.TupleConsExpr:
		out := &node{kind: kindSeq, rng: c.rng(r)}
		for _, it := range x.Exprs {
			out.items = append(out.items, c.expr(it, depth+1))
		}
		return out
	}
	if !literalExpr(e) {
		c.errorf(r, "A manifest holds plain values: strings, numbers, true, false, null, lists and objects. For expressions, functions, variables and operators are not evaluated.",
			"only literal values are allowed")
		return &node{kind: kindNull, rng: c.rng(r)}
	}
	v, hd := e.Value(nil)
	if hd.HasErrors() {
		c.diags = append(c.diags, c.fromHCL(hd)...)
		return &node{kind: kindNull, rng: c.rng(r)}
	}
	return c.value(v, r)
}

func (c *hclConv) value(v cty.Value, r hcl.Range) *node {
	out := &node{rng: c.rng(r)}
	switch {
	case v.IsNull():
		out.kind = kindNull
	case !v.IsKnown():
		c.errorf(r, "", "value is not known")
	case v.Type() == cty.String:
		out.kind, out.text = kindString, v.AsString()
	case v.Type() == cty.Bool:
		out.kind, out.text = kindBool, fmt.Sprint(v.True())
	case v.Type() == cty.Number:
		bf := v.AsBigFloat()
		if bf.IsInt() {
			i, _ := bf.Int(new(big.Int))
			out.kind, out.text = kindInt, i.String()
		} else {
			out.kind, out.text = kindFloat, bf.Text('g', -1)
		}
	default:
		c.errorf(r, "", "unsupported value of type %s", v.Type().FriendlyName())
	}
	return out
}

// literalExpr reports an expression whose value needs no evaluation: a
// literal, a string without interpolations (prescanHCL refused them), or
// a negated number. Lists and objects are walked by expr itself.
func literalExpr(e hclsyntax.Expression) bool {
	switch x := e.(type) {
	case *hclsyntax.LiteralValueExpr:
		return true
	case *hclsyntax.TemplateExpr:
		for _, p := range x.Parts {
			if _, ok := p.(*hclsyntax.LiteralValueExpr); !ok {
				return false
			}
		}
		return true
	case *hclsyntax.UnaryOpExpr:
		_, ok := x.Val.(*hclsyntax.LiteralValueExpr)
		return ok && x.Op == hclsyntax.OpNegate
	}
	return false
}
