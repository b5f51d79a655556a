package transport

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/haplan/haplan/internal/fileread"
)

// SSHConfig is the part of an OpenSSH client configuration (ssh_config(5))
// that haplan honours, so that machines reach hosts the way the operator's
// own `ssh` does: Host blocks with HostName, User, Port, IdentityFile and
// ProxyJump, and Include. Every other keyword is read and ignored.
//
// As in OpenSSH, files are read in order (the user's ~/.ssh/config before
// /etc/ssh/ssh_config) and for each keyword the first value that applies to
// a host wins, so specific Host blocks go before "Host *". IdentityFile is
// the exception: every applying value is kept, in order.
//
// Match blocks are not evaluated: apart from "Match all" their settings are
// ignored, which is the safe reading (haplan never picks up a setting meant
// for other circumstances).
//
// The zero SSHConfig is an empty configuration.
type SSHConfig struct {
	lines []configLine
	home  string
}

// configLine is one keyword line; an Include line holds the lines of the
// files it names.
type configLine struct {
	file    string
	line    int
	key     string // lower case
	args    []string
	include []configLine
}

// maxIncludeDepth bounds nested Include directives, as OpenSSH does.
const maxIncludeDepth = 16

// DefaultSSHConfigFiles are the files ssh reads: the user's, then the
// system-wide one.
func DefaultSSHConfigFiles(home string) []string {
	var out []string
	if home != "" {
		out = append(out, filepath.Join(home, ".ssh", "config"))
	}
	return append(out, "/etc/ssh/ssh_config")
}

// ReadSSHConfig reads the given files in order. A file that does not exist
// is skipped; one that cannot be read or parsed is an error naming it. home
// expands "~" and %d; relative Include paths resolve against the directory
// of the file given here (~/.ssh for the user's file, /etc/ssh for the
// system's, as in OpenSSH).
func ReadSSHConfig(home string, paths ...string) (*SSHConfig, error) {
	c := &SSHConfig{home: home}
	for _, p := range paths {
		src, err := fileread.Regular(p, 1<<20)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("ssh config: %w", err)
		}
		lines, err := c.parse(p, src, filepath.Dir(p), 0)
		if err != nil {
			return nil, err
		}
		c.lines = append(c.lines, lines...)
	}
	return c, nil
}

// ParseSSHConfig parses one configuration held in memory; name appears in
// errors and relative Include paths resolve against its directory.
func ParseSSHConfig(name string, src []byte, home string) (*SSHConfig, error) {
	c := &SSHConfig{home: home}
	lines, err := c.parse(name, src, filepath.Dir(name), 0)
	if err != nil {
		return nil, err
	}
	c.lines = lines
	return c, nil
}

func (c *SSHConfig) parse(name string, src []byte, baseDir string, depth int) ([]configLine, error) {
	var out []configLine
	for i, raw := range bytes.Split(src, []byte("\n")) {
		at := fmt.Sprintf("%s line %d", name, i+1)
		text := strings.TrimSpace(string(raw))
		if text == "" || text[0] == '#' {
			continue
		}
		key, rest := splitKeyword(text)
		args, err := splitArgs(rest)
		if err != nil {
			return nil, fmt.Errorf("ssh config: %s: %w", at, err)
		}
		l := configLine{file: name, line: i + 1, key: strings.ToLower(key), args: args}
		switch l.key {
		case "host":
			if len(args) == 0 {
				return nil, fmt.Errorf("ssh config: %s: Host needs at least one pattern", at)
			}
		case "include":
			if depth >= maxIncludeDepth {
				return nil, fmt.Errorf("ssh config: %s: Include nested deeper than %d", at, maxIncludeDepth)
			}
			for _, pat := range args {
				pat = expandTilde(pat, c.home)
				if !filepath.IsAbs(pat) {
					pat = filepath.Join(baseDir, pat)
				}
				files, err := filepath.Glob(pat)
				if err != nil {
					return nil, fmt.Errorf("ssh config: %s: Include %q: %w", at, pat, err)
				}
				for _, f := range files {
					fsrc, err := fileread.Regular(f, 1<<20)
					if err != nil {
						return nil, fmt.Errorf("ssh config: %s: Include: %w", at, err)
					}
					sub, err := c.parse(f, fsrc, baseDir, depth+1)
					if err != nil {
						return nil, err
					}
					l.include = append(l.include, sub...)
				}
			}
		}
		out = append(out, l)
	}
	return out, nil
}

// splitKeyword splits "Keyword value", "Keyword=value" and
// "Keyword = value".
func splitKeyword(s string) (key, rest string) {
	i := strings.IndexAny(s, " \t=")
	if i < 0 {
		return s, ""
	}
	key, rest = s[:i], strings.TrimLeft(s[i:], " \t")
	if strings.HasPrefix(rest, "=") {
		rest = strings.TrimLeft(rest[1:], " \t")
	}
	return key, rest
}

// splitArgs splits on blanks, honouring double quotes; a '#' outside
// quotes at the start of an argument begins a comment.
func splitArgs(s string) ([]string, error) {
	var args []string
	for {
		s = strings.TrimLeft(s, " \t")
		if s == "" || s[0] == '#' {
			return args, nil
		}
		if s[0] == '"' {
			end := strings.IndexByte(s[1:], '"')
			if end < 0 {
				return nil, errors.New("unterminated quote")
			}
			args = append(args, s[1:1+end])
			s = s[2+end:]
			continue
		}
		end := strings.IndexAny(s, " \t")
		if end < 0 {
			end = len(s)
		}
		args = append(args, s[:end])
		s = s[end:]
	}
}

// HostSettings are what the configuration says about one host. Empty
// fields were not set.
type HostSettings struct {
	// Host is the name looked up; HostName the address to dial instead,
	// with %h and %% expanded.
	Host, HostName string
	User           string
	Port           int
	// IdentityFiles are every applying IdentityFile, in order, with "~"
	// expanded; IdentityFile expands their %-tokens.
	IdentityFiles []string
	// ProxyJump is "[user@]host[:port]" hops separated by commas; a
	// "ProxyJump none" that wins is reported as "".
	ProxyJump string
	// KexAlgorithms is the key exchanges to offer, resolved from a
	// KexAlgorithms line against haplan's defaults (nil: the defaults).
	KexAlgorithms []string

	home string
}

// Lookup returns the settings that apply to host (matched case-insensitively
// against the Host patterns, as ssh matches the name given on its command
// line).
func (c *SSHConfig) Lookup(host string) (HostSettings, error) {
	hs := HostSettings{Host: host}
	if c == nil {
		return hs, nil
	}
	hs.home = c.home
	seen := map[string]bool{}
	var err error
	first := func(l configLine) bool {
		if seen[l.key] || len(l.args) == 0 {
			return false
		}
		seen[l.key] = true
		return true
	}
	var walk func(lines []configLine, active bool) bool
	walk = func(lines []configLine, active bool) bool {
		for _, l := range lines {
			if err != nil {
				return active
			}
			switch l.key {
			case "host":
				active = hostMatches(strings.ToLower(host), l.args)
				continue
			case "match":
				active = len(l.args) == 1 && strings.EqualFold(l.args[0], "all")
				continue
			case "include":
				// Host lines in an included file do not change the
				// including file's state; an inactive Include never
				// applies (OpenSSH's SSHCONF_NEVERMATCH).
				if active {
					walk(l.include, true)
				}
				continue
			}
			if !active {
				continue
			}
			at := fmt.Sprintf("%s line %d", l.file, l.line)
			switch l.key {
			case "hostname":
				if first(l) {
					hs.HostName = strings.NewReplacer("%h", host, "%%", "%").Replace(l.args[0])
				}
			case "user":
				if first(l) {
					hs.User = l.args[0]
				}
			case "port":
				if first(l) {
					p, perr := strconv.Atoi(l.args[0])
					if perr != nil || p < 1 || p > 65535 {
						err = fmt.Errorf("ssh config: %s: bad Port %q", at, l.args[0])
						continue
					}
					hs.Port = p
				}
			case "identityfile":
				if len(l.args) > 0 {
					hs.IdentityFiles = append(hs.IdentityFiles, expandTilde(l.args[0], c.home))
				}
			case "kexalgorithms":
				if first(l) {
					hs.KexAlgorithms, err = ResolveKex(l.args[0])
					if err != nil {
						err = fmt.Errorf("ssh config: %s: KexAlgorithms: %w", at, err)
					}
				}
			case "proxyjump":
				if first(l) {
					hs.ProxyJump = l.args[0]
					if strings.EqualFold(hs.ProxyJump, "none") {
						hs.ProxyJump = ""
					}
				}
			}
		}
		return active
	}
	walk(c.lines, true)
	return hs, err
}

// IdentityFile is the first IdentityFile with its %-tokens expanded for the
// given remote user and port (%d home, %h host name, %n host as given,
// %p port, %r remote user, %u local user, %% a percent sign), or "" when
// none applies.
func (h HostSettings) IdentityFile(user string, port int) (string, error) {
	if len(h.IdentityFiles) == 0 {
		return "", nil
	}
	s := h.IdentityFiles[0]
	hostname := h.HostName
	if hostname == "" {
		hostname = h.Host
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 == len(s) {
			return "", fmt.Errorf("ssh config: IdentityFile %q ends with %%", s)
		}
		i++
		switch s[i] {
		case '%':
			b.WriteByte('%')
		case 'd':
			b.WriteString(h.home)
		case 'h':
			b.WriteString(hostname)
		case 'n':
			b.WriteString(h.Host)
		case 'p':
			b.WriteString(strconv.Itoa(port))
		case 'r':
			b.WriteString(user)
		case 'u':
			b.WriteString(localUser())
		default:
			return "", fmt.Errorf("ssh config: IdentityFile %q: token %%%c is not supported", s, s[i])
		}
	}
	return b.String(), nil
}

func localUser() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return os.Getenv("LOGNAME")
}

func expandTilde(p, home string) string {
	if home == "" {
		return p
	}
	if p == "~" {
		return home
	}
	if strings.HasPrefix(p, "~/") {
		return filepath.Join(home, p[2:])
	}
	return p
}

// hostMatches applies a Host line: some pattern matches and no negated
// pattern ("!pattern") does.
func hostMatches(host string, patterns []string) bool {
	matched := false
	for _, p := range patterns {
		p = strings.ToLower(p)
		if neg, ok := strings.CutPrefix(p, "!"); ok {
			if wildcardMatch(neg, host) {
				return false
			}
			continue
		}
		if wildcardMatch(p, host) {
			matched = true
		}
	}
	return matched
}

// wildcardMatch matches s against a pattern where '*' is any run of
// characters and '?' exactly one; nothing else is special.
func wildcardMatch(pattern, s string) bool {
	// Iterative matching with one backtrack point for the last '*'.
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// ResolveKex applies an OpenSSH KexAlgorithms value to haplan's defaults
// (DefaultKex): "a,b" replaces them, "+a,b" appends, "-a,b" removes (with
// * and ? wildcards), "^a,b" puts first. Algorithms haplan does not offer
// (OpenSSH-only ones like sntrup761x25519, legacy ones like SHA-1 groups)
// are left out; a value that leaves nothing is an error.
func ResolveKex(spec string) ([]string, error) {
	def := DefaultKex()
	var names []string
	op := byte(0)
	if spec != "" && strings.ContainsRune("+-^", rune(spec[0])) {
		op, spec = spec[0], spec[1:]
	}
	for _, n := range strings.Split(spec, ",") {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	supported := func(n string) bool { return slices.Contains(def, n) }
	var out []string
	switch op {
	case '-':
		for _, d := range def {
			if !slices.ContainsFunc(names, func(pat string) bool { ok, _ := path.Match(pat, d); return ok }) {
				out = append(out, d)
			}
		}
	case '+', '^':
		var add []string
		for _, n := range names {
			if supported(n) {
				add = append(add, n)
			}
		}
		rest := slices.DeleteFunc(slices.Clone(def), func(d string) bool { return slices.Contains(add, d) })
		if op == '^' {
			out = append(add, rest...)
		} else {
			out = append(rest, add...)
		}
	default:
		for _, n := range names {
			if supported(n) && !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%q leaves no key exchange haplan offers (%s)", spec, strings.Join(def, ","))
	}
	return out, nil
}
