package manifests

import (
	"github.com/haplan/haplan/diag"
)

// lineIndex turns line:column positions into byte offsets.
type lineIndex struct {
	src    []byte
	starts []int // byte offset where each line starts
	// nonASCII marks the lines with a byte >= 0x80: on the others a
	// character column is the byte column, with no scan of the line (a
	// long single-line manifest would otherwise be quadratic).
	nonASCII map[int]bool
	// runeStarts caches, per non-ASCII line, the byte offset of each of
	// its characters: one scan per line, however many columns are asked.
	runeStarts map[int][]int
}

func newLineIndex(src []byte) lineIndex {
	starts := []int{0}
	nonASCII := map[int]bool{}
	for i, b := range src {
		switch {
		case b == '\n':
			starts = append(starts, i+1)
		case b >= 0x80:
			nonASCII[len(starts)] = true
		}
	}
	return lineIndex{src: src, starts: starts, nonASCII: nonASCII, runeStarts: map[int][]int{}}
}

// rangeAt returns a range starting at line:col (1-based; col counts
// characters as the YAML parser does) and spanning length characters on
// that line. Out-of-range input is clamped so a Range is always usable.
func (l lineIndex) rangeAt(filename string, line, col, length int) diag.Range {
	if line < 1 {
		line = 1
	}
	if line > len(l.starts) {
		line = len(l.starts)
	}
	if col < 1 {
		col = 1
	}
	start := l.starts[line-1]
	end := len(l.src)
	if line < len(l.starts) {
		end = l.starts[line] - 1
	}
	text := l.src[start:end]
	bcol, bend := col, col+length
	if l.nonASCII[line] {
		offs, ok := l.runeStarts[line]
		if !ok {
			for i := range string(text) {
				offs = append(offs, i)
			}
			l.runeStarts[line] = offs
		}
		at := func(c int) int { // 1-based character column to byte column
			if c-1 < len(offs) {
				return offs[c-1] + 1
			}
			return len(text) + 1 + (c - 1 - len(offs))
		}
		bcol, bend = at(col), at(col+length)
	}
	if bcol-1 > len(text) {
		bcol = len(text) + 1
	}
	if bend-1 > len(text) {
		bend = len(text) + 1
	}
	return diag.Range{
		Filename: filename,
		Start:    diag.Pos{Line: line, Column: bcol, Byte: start + bcol - 1},
		End:      diag.Pos{Line: line, Column: bend, Byte: start + bend - 1},
	}
}

// fromByte returns the position of a byte offset (clamped to the source).
func (l lineIndex) fromByte(off int) diag.Pos {
	off = max(0, min(off, len(l.src)))
	lo, hi := 0, len(l.starts)-1
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if l.starts[mid] <= off {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return diag.Pos{Line: lo + 1, Column: off - l.starts[lo] + 1, Byte: off}
}
