package transporttest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/haplan/haplan/transport"
)

// The shell lines below are the ones transport/files.go builds; this
// package's tests run the real functions against them, so a change there
// shows here.

// ExitNotExist is the exit status transport.ReadFile and StatFile read as
// "no such file".
const ExitNotExist = 44

// ReadFileLine is the line transport.ReadFile runs to read p.
func ReadFileLine(p string) string {
	q := transport.Quote(p)
	return fmt.Sprintf("[ -e %s ] || exit %d; exec cat -- %s", q, ExitNotExist, q)
}

// StatFileLine is the line transport.StatFile runs to stat p.
func StatFileLine(p string) string {
	return fmt.Sprintf("[ -e %[1]s ] || exit %[2]d; stat -L -c '%%a %%s %%F' -- %[1]s || exit; "+
		"if [ -f %[1]s ]; then sha256sum -- %[1]s; fi", transport.Quote(p), ExitNotExist)
}

// ReadOf matches transport.ReadFile of p. Answer with Stdout (the content)
// or Absent.
func ReadOf(p string) Matcher {
	m := Line(ReadFileLine(p))
	m.desc, m.path = "ReadFile "+p, p
	return m
}

// StatOf matches transport.StatFile of p. Answer with Stat or Absent.
func StatOf(p string) Matcher {
	m := Line(StatFileLine(p))
	m.desc, m.path = "StatFile "+p, p
	return m
}

// WriteOf matches transport.WriteFile of p (see ParseWrite).
func WriteOf(p string) Matcher {
	return Matcher{desc: "WriteFile " + p, path: p, match: func(c transport.Cmd) bool {
		w, ok := ParseWrite(c)
		return ok && w.Path == p
	}}
}

// Absent answers a ReadOf or StatOf: there is no such file.
func (e *Expectation) Absent() *Expectation { return e.Exit(ExitNotExist) }

// Stat answers a StatOf: the file exists with mode and content data (a
// directory when mode has fs.ModeDir, and data is then ignored).
func (e *Expectation) Stat(mode fs.FileMode, data []byte) *Expectation {
	return e.Stdout(StatOutput(e.m.path, mode, data))
}

// StatOutput is what StatFile's line prints for a file at p with mode and
// content data, as GNU stat and sha256sum print it.
func StatOutput(p string, mode fs.FileMode, data []byte) string {
	perm := uint64(mode.Perm())
	for bit, v := range map[fs.FileMode]uint64{fs.ModeSetuid: 0o4000, fs.ModeSetgid: 0o2000, fs.ModeSticky: 0o1000} {
		if mode&bit != 0 {
			perm |= v
		}
	}
	a := strconv.FormatUint(perm, 8)
	if mode.IsDir() {
		return fmt.Sprintf("%s 4096 directory\n", a)
	}
	kind := "regular file"
	if len(data) == 0 {
		kind = "regular empty file"
	}
	sum := sha256.Sum256(data)
	return fmt.Sprintf("%s %d %s\n%s  %s\n", a, len(data), kind, hex.EncodeToString(sum[:]), p)
}

// Write is one transport.WriteFile as its command shows it.
type Write struct {
	Path string
	Data []byte      // what was sent on stdin
	Mode fs.FileMode // what the file ends up with (the umask, or the chmod)
	Cmd  transport.Cmd
}

// ParseWrite takes apart a command that transport.WriteFile built; ok is
// false for any other command.
func ParseWrite(c transport.Cmd) (w Write, ok bool) {
	lines := strings.Split(c.Line, "\n")
	if len(lines) < 3 || lines[0] != "set -e" || lines[1] != "umask 077" {
		return Write{}, false
	}
	var umask, chmod string
	for _, l := range lines {
		if rest, ok := strings.CutPrefix(l, `mv -f -- "$t" `); ok {
			if w.Path, ok = unquote(rest); !ok {
				return Write{}, false
			}
		}
		if rest, ok := strings.CutPrefix(l, "set -C; umask "); ok {
			umask = rest
		}
		if rest, ok := strings.CutPrefix(l, "chmod "); ok {
			chmod = strings.TrimSuffix(rest, ` "$t"`)
		}
	}
	if w.Path == "" || umask == "" {
		return Write{}, false
	}
	var perm uint64
	if chmod != "" {
		v, err := strconv.ParseUint(chmod, 8, 32)
		if err != nil {
			return Write{}, false
		}
		perm = v
	} else {
		// cat creates the file with 0666 less the umask.
		v, err := strconv.ParseUint(umask, 8, 32)
		if err != nil {
			return Write{}, false
		}
		perm = 0o666 &^ v
	}
	w.Mode = fs.FileMode(perm & 0o777)
	for bit, v := range map[uint64]fs.FileMode{0o4000: fs.ModeSetuid, 0o2000: fs.ModeSetgid, 0o1000: fs.ModeSticky} {
		if perm&bit != 0 {
			w.Mode |= v
		}
	}
	w.Data, w.Cmd = c.Stdin, c
	return w, true
}

// unquote reverses transport.Quote.
func unquote(q string) (string, bool) {
	if len(q) < 2 || q[0] != '\'' || q[len(q)-1] != '\'' {
		return "", false
	}
	s := strings.ReplaceAll(q[1:len(q)-1], `'\''`, "'")
	return s, transport.Quote(s) == q
}

// Writes returns every transport.WriteFile the runner was given, in order.
func (r *Runner) Writes() []Write {
	var out []Write
	for _, c := range r.Calls() {
		if w, ok := ParseWrite(c); ok {
			out = append(out, w)
		}
	}
	return out
}

// Written returns the last transport.WriteFile of p.
func (r *Runner) Written(p string) (Write, bool) {
	ws := r.Writes()
	for i := len(ws) - 1; i >= 0; i-- {
		if ws[i].Path == p {
			return ws[i], true
		}
	}
	return Write{}, false
}
