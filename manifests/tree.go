package manifests

import (
	"github.com/haplan/haplan/diag"
)

// The YAML and HCL front ends both produce a tree of these nodes, so that
// decoding, strictness, defaults and positions are written once.

type nodeKind int

const (
	kindNull nodeKind = iota
	kindMap
	kindSeq
	kindString
	kindInt
	kindFloat
	kindBool
)

func (k nodeKind) String() string {
	switch k {
	case kindNull:
		return "null"
	case kindMap:
		return "a mapping"
	case kindSeq:
		return "a list"
	case kindString:
		return "a string"
	case kindInt:
		return "an integer"
	case kindFloat:
		return "a number"
	case kindBool:
		return "a boolean"
	}
	return "unknown"
}

// node is a format-neutral value with its source range.
type node struct {
	kind    nodeKind
	rng     diag.Range
	entries []entry // kindMap, in source order
	items   []*node // kindSeq
	text    string  // scalars: the value as written (unquoted)
}

// entry is one key of a mapping.
type entry struct {
	key    string
	keyRng diag.Range
	val    *node
}
