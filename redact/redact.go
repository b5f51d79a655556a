// Package redact removes known secret values from text before it leaves
// haplan: terminal output, logs, saved plans, and remote stderr quoted in
// errors. It knows nothing about where secrets come from; callers hand it
// the resolved values once, at start-up.
package redact

import (
	"io"
	"sort"
	"strings"
	"sync"
)

// Mask is what a secret is replaced with.
const Mask = "(sensitive)"

// Redactor replaces every occurrence of its secrets. The zero value and a
// nil *Redactor redact nothing. Safe for concurrent use.
type Redactor struct {
	r *strings.Replacer
}

// New returns a Redactor for the given secret values. Empty values and
// values shorter than 4 bytes are ignored: masking "a" would shred output
// without protecting anything.
func New(secrets ...string) *Redactor {
	var vals []string
	seen := map[string]bool{}
	for _, s := range secrets {
		for _, v := range []string{s, strings.TrimSpace(s)} {
			if len(v) < 4 || seen[v] {
				continue
			}
			seen[v] = true
			vals = append(vals, v)
		}
	}
	if len(vals) == 0 {
		return &Redactor{}
	}
	// Longest first, so a secret that contains another is masked whole.
	sort.Slice(vals, func(i, j int) bool { return len(vals[i]) > len(vals[j]) })
	pairs := make([]string, 0, 2*len(vals))
	for _, v := range vals {
		pairs = append(pairs, v, Mask)
	}
	return &Redactor{r: strings.NewReplacer(pairs...)}
}

// String returns s with every secret masked.
func (r *Redactor) String(s string) string {
	if r == nil || r.r == nil {
		return s
	}
	return r.r.Replace(s)
}

// Writer returns a writer that masks secrets in what passes through it.
// Writes are line-buffered so a secret split across two Write calls is
// still masked; call Flush (or Close) at the end to emit a trailing partial
// line.
func (r *Redactor) Writer(w io.Writer) *Writer {
	return &Writer{r: r, w: w}
}

// Writer is a line-buffered redacting io.Writer.
type Writer struct {
	mu  sync.Mutex
	r   *Redactor
	w   io.Writer
	buf []byte
}

// Write buffers p and writes every complete line, redacted.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	i := strings.LastIndexByte(string(w.buf), '\n')
	if i < 0 {
		return len(p), nil
	}
	out := w.r.String(string(w.buf[:i+1]))
	w.buf = append(w.buf[:0], w.buf[i+1:]...)
	if _, err := io.WriteString(w.w, out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush writes a pending partial line.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) == 0 {
		return nil
	}
	out := w.r.String(string(w.buf))
	w.buf = w.buf[:0]
	_, err := io.WriteString(w.w, out)
	return err
}

// Close flushes.
func (w *Writer) Close() error { return w.Flush() }
