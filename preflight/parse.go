package preflight

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// listener is a TCP socket in LISTEN state on a host.
type listener struct {
	Addr string // local address as printed, without the port
	Port int
	// Process is the name of the (first) owning process; empty when the
	// listing did not say (no -p privileges, or /proc/net/tcp).
	Process string
	PID     int
}

// parseSS reads the output of `ss -Htlnp` (no header). Lines it cannot
// read are skipped: a newer ss adding columns must not fail the check.
func parseSS(out string) []listener {
	var ls []listener
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 5 || f[0] != "LISTEN" {
			continue
		}
		addr, port, ok := splitAddrPort(f[3])
		if !ok {
			continue
		}
		l := listener{Addr: addr, Port: port}
		if len(f) > 5 {
			l.Process, l.PID = parseSSUsers(strings.Join(f[5:], " "))
		}
		ls = append(ls, l)
	}
	return ls
}

// splitAddrPort splits "0.0.0.0:22", "[::]:22", "*:22" or
// "127.0.0.53%lo:53" at the last colon.
func splitAddrPort(s string) (string, int, bool) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return "", 0, false
	}
	p, err := strconv.Atoi(s[i+1:])
	if err != nil || p <= 0 || p > 65535 {
		return "", 0, false
	}
	return s[:i], p, true
}

// parseSSUsers reads `users:(("sshd",pid=12,fd=4),("sshd",pid=9,fd=4))`
// and returns the first process name and pid.
func parseSSUsers(s string) (string, int) {
	i := strings.Index(s, `(("`)
	if i < 0 {
		return "", 0
	}
	s = s[i+3:]
	j := strings.IndexByte(s, '"')
	if j < 0 {
		return "", 0
	}
	name, rest := s[:j], s[j+1:]
	pid := 0
	if k := strings.Index(rest, "pid="); k >= 0 {
		rest = rest[k+4:]
		end := strings.IndexAny(rest, ",)")
		if end < 0 {
			end = len(rest)
		}
		pid, _ = strconv.Atoi(rest[:end])
	}
	return name, pid
}

// parseProcNetTCP reads /proc/net/tcp and /proc/net/tcp6 (concatenated):
// the fallback when ss is not installed. It knows no process names.
func parseProcNetTCP(out string) []listener {
	var ls []listener
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		// sl local_address rem_address st ...; st 0A is LISTEN.
		if len(f) < 4 || f[3] != "0A" {
			continue
		}
		i := strings.LastIndexByte(f[1], ':')
		if i < 0 {
			continue
		}
		p, err := strconv.ParseUint(f[1][i+1:], 16, 16)
		if err != nil || p == 0 {
			continue
		}
		ls = append(ls, listener{Addr: f[1][:i], Port: int(p)})
	}
	return ls
}

// parseMemTotal returns MemTotal from /proc/meminfo, in bytes.
func parseMemTotal(meminfo string) (uint64, error) {
	sc := bufio.NewScanner(strings.NewReader(meminfo))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || f[0] != "MemTotal:" {
			continue
		}
		n, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("MemTotal %q: %w", f[1], err)
		}
		unit := uint64(1)
		if len(f) > 2 && strings.EqualFold(f[2], "kB") {
			unit = 1024
		}
		return n * unit, nil
	}
	return 0, errors.New("no MemTotal line in /proc/meminfo")
}

// parseEpoch reads `date +%s.%N`. A date without %N support (busybox
// prints "1700000000.N" or just seconds) yields whole seconds and
// precise=false.
func parseEpoch(s string) (t time.Time, precise bool, err error) {
	s = strings.TrimSpace(s)
	secs, frac, hasFrac := strings.Cut(s, ".")
	sec, err := strconv.ParseInt(secs, 10, 64)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("remote time %q: %w", s, err)
	}
	if !hasFrac || frac == "" || strings.Trim(frac, "0123456789") != "" {
		return time.Unix(sec, 0), false, nil
	}
	if len(frac) > 9 {
		frac = frac[:9]
	}
	frac += strings.Repeat("0", 9-len(frac))
	ns, _ := strconv.ParseInt(frac, 10, 64)
	return time.Unix(sec, ns), true, nil
}

// clockSkew estimates how far the remote clock is ahead of the local one
// (negative: behind). The remote time was read somewhere between sent and
// received; the best estimate is the midpoint, and the error bound is half
// the round trip (plus a second when the remote printed whole seconds).
func clockSkew(sent, received, remote time.Time, precise bool) (skew, uncertainty time.Duration) {
	rtt := received.Sub(sent)
	mid := sent.Add(rtt / 2)
	uncertainty = rtt / 2
	if !precise {
		// Truncated seconds: the true time is in [remote, remote+1s).
		remote = remote.Add(500 * time.Millisecond)
		uncertainty += 500 * time.Millisecond
	}
	return remote.Sub(mid), uncertainty
}

// parseVersion reads the leading numeric components of a version such as
// "1.10.3", "17.03.2-ce", "20.10.24+dfsg1" or "v1.12.0".
func parseVersion(s string) ([]int, bool) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "v")
	var out []int
	for part := range strings.SplitSeq(s, ".") {
		end := 0
		for end < len(part) && part[end] >= '0' && part[end] <= '9' {
			end++
		}
		if end == 0 {
			break
		}
		n, err := strconv.Atoi(part[:end])
		if err != nil {
			return nil, false
		}
		out = append(out, n)
		if end < len(part) {
			break // "24+dfsg1": suffix ends the numeric part
		}
	}
	return out, len(out) > 0
}

// versionLess compares numeric versions; missing components count as 0.
func versionLess(a, b []int) bool {
	for i := range max(len(a), len(b)) {
		var x, y int
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			return x < y
		}
	}
	return false
}

// formatBytes prints a memory size in GiB with one decimal.
func formatBytes(n uint64) string {
	return strconv.FormatFloat(math.Round(float64(n)/(1<<30)*10)/10, 'f', 1, 64) + " GiB"
}
