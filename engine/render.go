package engine

import (
	"fmt"
	"strconv"
	"strings"
)

// DOT renders the graph in Graphviz syntax: one node per step labelled by
// its address, in Steps order, then one edge from each dependency to its
// dependent, ordered by dependent then dependency. The output is
// deterministic, so it can be diffed and kept in golden files.
func (g *Graph) DOT() string {
	var b strings.Builder
	b.WriteString("digraph haplan {\n\trankdir=LR;\n")
	for _, a := range g.order {
		fmt.Fprintf(&b, "\t%s;\n", strconv.Quote(string(a)))
	}
	for _, a := range g.order {
		for _, d := range g.deps[a] {
			fmt.Fprintf(&b, "\t%s -> %s;\n", strconv.Quote(string(d)), strconv.Quote(string(a)))
		}
	}
	b.WriteString("}\n")
	return b.String()
}

// Mermaid renders the graph as a Mermaid flowchart, ordered like DOT. Node
// ids are the addresses with every character other than a letter, digit or
// underscore replaced by "_" (plus a numeric suffix where two addresses
// would collide); labels are the addresses, quoted.
func (g *Graph) Mermaid() string {
	ids := make(map[Addr]string, len(g.order))
	used := make(map[string]bool, len(g.order))
	for _, a := range g.order {
		base := mermaidID(a)
		id := base
		for i := 2; used[id]; i++ {
			id = fmt.Sprintf("%s_%d", base, i)
		}
		used[id] = true
		ids[a] = id
	}
	var b strings.Builder
	b.WriteString("flowchart LR\n")
	for _, a := range g.order {
		fmt.Fprintf(&b, "    %s[\"%s\"]\n", ids[a], strings.ReplaceAll(string(a), `"`, "#quot;"))
	}
	for _, a := range g.order {
		for _, d := range g.deps[a] {
			fmt.Fprintf(&b, "    %s --> %s\n", ids[d], ids[a])
		}
	}
	return b.String()
}

func mermaidID(a Addr) string {
	id := []byte(a)
	for i, c := range id {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_':
		default:
			id[i] = '_'
		}
	}
	s := strings.TrimRight(string(id), "_")
	// "end" closes a subgraph in Mermaid, and an empty id is no id.
	if s == "" || strings.EqualFold(s, "end") {
		s = "n_" + s
	}
	return s
}
