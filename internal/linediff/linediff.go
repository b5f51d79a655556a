// Package linediff shows what changes between two versions of a small
// text file, as the hunks of a unified diff ("-", "+" and " " lines), for
// plans that change a configuration file.
package linediff

import (
	"fmt"
	"strings"
)

// MaxLines bounds the files compared (the table is quadratic): longer
// files get no diff.
const MaxLines = 2000

// Unified returns the hunks between old and new with context lines of
// context around each change: "@@ -a,b +c,d @@" headers, then lines
// starting with "-", "+" or " ". It returns nil when the texts are equal,
// and ok false when either has more than MaxLines lines.
func Unified(old, new string, context int) (lines []string, ok bool) {
	a, b := split(old), split(new)
	if len(a) > MaxLines || len(b) > MaxLines {
		return nil, false
	}
	// lcs[i][j]: the longest common subsequence of a[i:] and b[j:].
	lcs := make([][]int32, len(a)+1)
	for i := range lcs {
		lcs[i] = make([]int32, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	type op struct {
		kind byte // ' ', '-', '+'
		text string
		ai   int // line number in a (1-based) of ' ' and '-'
		bi   int // in b, of ' ' and '+'
	}
	var ops []op
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case i < len(a) && j < len(b) && a[i] == b[j]:
			ops = append(ops, op{' ', a[i], i + 1, j + 1})
			i, j = i+1, j+1
		case j < len(b) && (i == len(a) || lcs[i][j+1] > lcs[i+1][j]):
			ops = append(ops, op{'+', b[j], i + 1, j + 1})
			j++
		default:
			ops = append(ops, op{'-', a[i], i + 1, j + 1})
			i++
		}
	}
	for k := 0; k < len(ops); {
		if ops[k].kind == ' ' {
			k++
			continue
		}
		// A hunk: from context lines before this change to context lines
		// after the last change that is at most 2*context away.
		start := max(0, k-context)
		end := k
		for end < len(ops) {
			if ops[end].kind != ' ' {
				end++
				continue
			}
			run := end
			for run < len(ops) && ops[run].kind == ' ' {
				run++
			}
			if run == len(ops) || run-end > 2*context {
				end = min(len(ops), end+context)
				break
			}
			end = run
		}
		var body []string
		aStart, bStart, aN, bN := ops[start].ai, ops[start].bi, 0, 0
		for _, o := range ops[start:end] {
			body = append(body, string(o.kind)+o.text)
			if o.kind != '+' {
				aN++
			}
			if o.kind != '-' {
				bN++
			}
		}
		lines = append(lines, fmt.Sprintf("@@ -%d,%d +%d,%d @@", aStart, aN, bStart, bN))
		lines = append(lines, body...)
		k = end
	}
	return lines, true
}

func split(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}
