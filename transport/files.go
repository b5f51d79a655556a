package transport

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
)

// Quote quotes s for a POSIX shell: the result is always one word.
func Quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// ReadOnly returns a Runner that refuses commands marked Mutates with an
// error wrapping ErrReadOnly that names the host and command. Plan-mode
// probes run through it.
func ReadOnly(r Runner) Runner { return readOnly{r} }

// IsReadOnly reports whether r is a read-only runner (ReadOnly): what
// writes by other paths than commands (a container started through the
// Docker Engine API) must refuse too.
func IsReadOnly(r Runner) bool {
	_, ok := r.(readOnly)
	return ok
}

type readOnly struct{ r Runner }

func (g readOnly) Host() string { return g.r.Host() }

func (g readOnly) Run(ctx context.Context, c Cmd) (Result, error) {
	if c.Mutates {
		line := c.Line
		if rd, ok := g.r.(interface{ Redact(string) string }); ok {
			line = rd.Redact(line)
		}
		return Result{ExitCode: -1}, fmt.Errorf("%s: %q: %w", g.r.Host(), line, ErrReadOnly)
	}
	return g.r.Run(ctx, c)
}

// exitNotExist is the status our helper scripts use for "no such file": it
// keeps "absent" apart from "cat failed".
const exitNotExist = 44

// ReadFile reads a remote file. A missing file returns (nil, false, nil).
func ReadFile(ctx context.Context, r Runner, p string) ([]byte, bool, error) {
	q := Quote(p)
	res, err := r.Run(ctx, Cmd{Line: fmt.Sprintf("[ -e %s ] || exit %d; exec cat -- %s", q, exitNotExist, q)})
	var pe *ProcessError
	if errors.As(err, &pe) && pe.ExitCode == exitNotExist {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read %s: %w", p, err)
	}
	return res.Stdout, true, nil
}

// FileInfo is what StatFile observed. SHA256 is set for regular files only.
type FileInfo struct {
	Exists bool
	Mode   fs.FileMode
	Size   int64
	SHA256 string
}

// StatFile reports a remote file's mode, size and digest in one round trip.
// Symbolic links are followed. It needs GNU or BusyBox stat and sha256sum.
func StatFile(ctx context.Context, r Runner, p string) (FileInfo, error) {
	q := Quote(p)
	line := fmt.Sprintf("[ -e %[1]s ] || exit %[2]d; stat -L -c '%%a %%s %%F' -- %[1]s || exit; "+
		"if [ -f %[1]s ]; then sha256sum -- %[1]s; fi", q, exitNotExist)
	res, err := r.Run(ctx, Cmd{Line: line})
	var pe *ProcessError
	if errors.As(err, &pe) && pe.ExitCode == exitNotExist {
		return FileInfo{}, nil
	}
	if err != nil {
		return FileInfo{}, fmt.Errorf("stat %s: %w", p, err)
	}
	fi, err := parseStat(string(res.Stdout))
	if err != nil {
		return FileInfo{}, fmt.Errorf("%s: stat %s: %w", r.Host(), p, err)
	}
	return fi, nil
}

func parseStat(out string) (FileInfo, error) {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	fields := strings.SplitN(lines[0], " ", 3)
	if len(fields) != 3 {
		return FileInfo{}, fmt.Errorf("unexpected stat output %q", lines[0])
	}
	perm, err := strconv.ParseUint(fields[0], 8, 32)
	if err != nil {
		return FileInfo{}, fmt.Errorf("unexpected stat mode %q: %w", fields[0], err)
	}
	size, err := strconv.ParseInt(fields[1], 10, 64)
	if err != nil {
		return FileInfo{}, fmt.Errorf("unexpected stat size %q: %w", fields[1], err)
	}
	mode := fs.FileMode(perm & 0o777)
	if perm&0o4000 != 0 {
		mode |= fs.ModeSetuid
	}
	if perm&0o2000 != 0 {
		mode |= fs.ModeSetgid
	}
	if perm&0o1000 != 0 {
		mode |= fs.ModeSticky
	}
	regular := strings.HasPrefix(fields[2], "regular")
	switch {
	case fields[2] == "directory":
		mode |= fs.ModeDir
	case !regular:
		mode |= fs.ModeIrregular
	}
	fi := FileInfo{Exists: true, Mode: mode, Size: size}
	if regular {
		// "DIGEST  NAME"; GNU prefixes the line with a backslash when it
		// escapes the name.
		var sum string
		if len(lines) == 2 {
			sum, _, _ = strings.Cut(strings.TrimPrefix(lines[1], `\`), " ")
		}
		if len(sum) != 64 || strings.Trim(sum, "0123456789abcdef") != "" {
			return FileInfo{}, fmt.Errorf("unexpected sha256sum output %q", out)
		}
		fi.SHA256 = sum
	}
	return fi, nil
}

// WriteFile replaces a remote file atomically: the data goes over stdin
// (never the command line) into a new temporary file in the same directory
// (created exclusively, with its final mode where a umask can give it),
// which is synced and renamed over p. Parent directories are created (0700
// for new ones). A failed write leaves no temporary file behind; a
// cancelled one (its process killed, so no trap runs) may, and the next
// write of p removes it. Writes of one path must not run concurrently.
//
// Every command the script starts costs the host a process (~2 ms of CPU
// on a small one): a write of a file whose directory exists starts cat,
// sync and mv, plus chmod for modes a umask cannot give (executable bits,
// setuid/setgid/sticky).
func WriteFile(ctx context.Context, r Runner, p string, data []byte, mode fs.FileMode) error {
	dir, base := path.Split(p)
	if base == "" {
		return fmt.Errorf("%s: write %q: not a file path", r.Host(), p)
	}
	if dir == "" {
		dir = "."
	}
	suffix, err := tempSuffix()
	if err != nil {
		return fmt.Errorf("%s: write %s: %w", r.Host(), p, err)
	}
	qd := Quote(dir)
	perm := uint32(mode.Perm() | unixSpecial(mode))
	umask, chmod := uint32(0o777)&^perm, ""
	if perm&^0o666 != 0 {
		umask, chmod = 0o077, fmt.Sprintf(`chmod %04o "$t"`, perm)
	}
	line := strings.Join([]string{
		"set -e",
		"umask 077",
		"[ -d " + qd + " ] || mkdir -p -- " + qd,
		// mv would move the file into a directory instead of replacing it.
		"if [ -d " + Quote(p) + " ]; then printf 'haplan: %s is a directory\\n' " + Quote(p) + " >&2; exit 1; fi",
		// Left by a cancelled write of p: six random characters.
		"set -- " + Quote(path.Join(dir, "."+base+".haplan.")) + "??????",
		`[ ! -e "$1" ] || rm -f -- "$@"`,
		"t=" + Quote(path.Join(dir, "."+base+".haplan."+suffix)),
		`trap 'rm -f -- "$t"' EXIT`,
		// -C: the shell creates the file exclusively (O_EXCL).
		fmt.Sprintf("set -C; umask %04o", umask),
		`cat > "$t"`,
		"set +C",
		chmod,
		`sync -- "$t" 2>/dev/null || sync`,
		`mv -f -- "$t" ` + Quote(p),
		"trap - EXIT",
	}, "\n")
	if data == nil {
		data = []byte{}
	}
	if _, err := r.Run(ctx, Cmd{Line: line, Stdin: data, Mutates: true}); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}

// tempSuffix returns six random characters of mktemp's alphabet.
func tempSuffix() (string, error) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b), nil
}

func unixSpecial(m fs.FileMode) fs.FileMode {
	var s fs.FileMode
	if m&fs.ModeSetuid != 0 {
		s |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		s |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		s |= 0o1000
	}
	return s
}
