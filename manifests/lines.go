package manifests

import (
	"unicode/utf8"

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
	return lineIndex{src: src, starts: starts, nonASCII: nonASCII}
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
		bcol = byteCol(text, col)
	}
	if bcol-1 > len(text) {
		bcol = len(text) + 1
	}
	if l.nonASCII[line] {
		bend = byteCol(text[bcol-1:], length+1) + bcol - 1
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

// byteCol converts a 1-based character column on text to a byte column.
func byteCol(text []byte, col int) int {
	b := 0
	for i := 1; i < col; i++ {
		if b >= len(text) {
			return b + 1 + (col - i - 1)
		}
		_, size := utf8.DecodeRune(text[b:])
		b += size
	}
	return b + 1
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
