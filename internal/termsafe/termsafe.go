// Package termsafe keeps text that haplan prints from acting on the
// terminal that shows it: escape sequences that recolour or rewrite the
// screen, and bidirectional overrides that reorder what the reader sees (a
// manifest from a pull request, a remote command's output, a host name).
package termsafe

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Visible escapes what must not reach a terminal raw: control characters
// but tab (ESC sequences could recolour or rewrite the screen), DEL, C1
// controls, and bidirectional overrides and isolates (which reorder what
// the reader sees), each as a Go escape (\x1b, \u202e). Invalid UTF-8
// bytes are escaped too.
func Visible(s string) string {
	clean := true
	for _, r := range s {
		if mustEscape(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, "\\x%02x", s[i])
		case mustEscape(r) && r < 0x100:
			fmt.Fprintf(&b, "\\x%02x", r)
		case mustEscape(r):
			fmt.Fprintf(&b, "\\u%04x", r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// mustEscape: r is shown escaped.
func mustEscape(r rune) bool {
	switch {
	case r == '\t' || r == '\n':
		return false
	case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e, r == 0x200f, r == 0x061c:
		return true
	case r == utf8.RuneError:
		return true
	}
	return false
}

// JSON writes, as \u escapes, what encoding/json leaves raw in a document
// but a terminal must not see (DEL, C1 controls, bidirectional overrides
// and isolates): a CI log that prints the document shows the text as it
// is, not reordered or recoloured. The document decodes to the same
// strings. Outside strings JSON is ASCII, so every such rune is inside one.
func JSON(doc []byte) []byte {
	var out []byte
	for i := 0; i < len(doc); {
		r, size := utf8.DecodeRune(doc[i:])
		if r >= 0x7f && r != utf8.RuneError && mustEscape(r) {
			if out == nil {
				out = append(make([]byte, 0, len(doc)+16), doc[:i]...)
			}
			out = fmt.Appendf(out, "\\u%04x", r)
		} else if out != nil {
			out = append(out, doc[i:i+size]...)
		}
		i += size
	}
	if out == nil {
		return doc
	}
	return out
}
