// Package didyoumean finds the "did you mean" for a mistyped name: the
// closest of the valid names by edit distance, when it is close enough to
// be a plausible typo.
package didyoumean

// maxLen bounds the names compared.
const maxLen = 64

// Closest returns the candidate closest to s by edit distance, or "" when
// none is close enough to be a plausible typo.
func Closest(s string, candidates []string) string {
	if len(s) > maxLen {
		return "" // no typo is that long, and the distance is quadratic
	}
	best, bestD := "", -1
	for _, c := range candidates {
		d := editDistance(lower(s), lower(c))
		if bestD < 0 || d < bestD {
			best, bestD = c, d
		}
	}
	limit := max(1, min(3, len(s)/3))
	if bestD < 0 || bestD > limit {
		return ""
	}
	return best
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// editDistance is the optimal-string-alignment distance between a and b
// (bytes): Levenshtein plus adjacent transpositions, the commonest typo.
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
