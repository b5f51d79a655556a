package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// ErrReadOnly is returned (wrapped) when a mutating command is run through a
// Runner returned by ReadOnly. Never retried.
var ErrReadOnly = errors.New("mutating command refused in read-only (plan) mode")

// ProcessError reports a remote command that exited non-zero. Command and
// Stderr have been passed through the pool's Redact function.
type ProcessError struct {
	Host     string
	Command  string
	ExitCode int
	Stderr   string
}

func (e *ProcessError) Error() string {
	msg := fmt.Sprintf("%s: command %q exited with status %d", e.Host, e.Command, e.ExitCode)
	if s := strings.TrimSpace(e.Stderr); s != "" {
		msg += ": " + lastLines(s, 5)
	}
	return msg
}

// lastLines keeps the tail of stderr for the one-line message; the full text
// stays in ProcessError.Stderr.
func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = append([]string{"..."}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, " | ")
}

// HostKeyError reports a host key that is unknown (Unknown is true) or that
// does not match the known or pinned keys. Never retried.
type HostKeyError struct {
	Host    string
	Address string // host:port as looked up in known_hosts
	// Want are the SHA256 fingerprints of the keys known for the host.
	Want []string
	// Got is the SHA256 fingerprint of the key the server presented.
	Got            string
	Unknown        bool
	KnownHostsFile string
	// Pinned is true when the expected key came from Config.HostKey.
	Pinned bool
}

func (e *HostKeyError) Error() string {
	if e.Unknown {
		host, port, err := net.SplitHostPort(e.Address)
		if err != nil {
			host, port = e.Address, "22"
		}
		return fmt.Sprintf("%s: host key for %s is unknown (not in %s; server offered %s): verify the fingerprint, then add it with "+
			"`ssh-keyscan -p %s %s >> %s`, pin it in the manifest, or use host key policy accept-new",
			e.Host, e.Address, e.KnownHostsFile, e.Got, port, host, e.KnownHostsFile)
	}
	return fmt.Sprintf("%s: HOST KEY MISMATCH for %s: server offered %s, %s has %s; "+
		"the host may have been reinstalled or someone may be intercepting the connection; not retrying",
		e.Host, e.Address, e.Got, e.source(), strings.Join(e.Want, ", "))
}

func (e *HostKeyError) source() string {
	if e.Pinned {
		return "the pinned host key"
	}
	return e.KnownHostsFile
}

// AuthError reports that the server rejected every credential offered. Not
// retried by the pool.
type AuthError struct {
	Host string
	User string
	Err  error
}

func (e *AuthError) Error() string {
	return fmt.Sprintf("%s: authentication as %q failed: %v", e.Host, e.User, e.Err)
}

func (e *AuthError) Unwrap() error { return e.Err }

// ConnectError reports a dial or handshake failure that persisted through
// Attempts tries.
type ConnectError struct {
	Host     string
	Address  string
	Attempts int
	Err      error
}

func (e *ConnectError) Error() string {
	return fmt.Sprintf("%s: connect to %s failed after %d attempt(s): %v", e.Host, e.Address, e.Attempts, e.Err)
}

func (e *ConnectError) Unwrap() error { return e.Err }

// UnreachableHost names the host that could not be reached: a plan
// reports its steps as not probed and goes on (engine.Unreachable).
func (e *ConnectError) UnreachableHost() string { return e.Host }

// NotSSHError reports a port that answered in another protocol than SSH
// (a web server, a database): the address or the port is wrong. Not
// retried.
type NotSSHError struct {
	Host, Address string
	Got           []byte // the first bytes it sent
}

func (e *NotSSHError) Error() string {
	return fmt.Sprintf("%s: %s is not an SSH server: it answered %s", e.Host, e.Address, strconv.QuoteToASCII(string(e.Got[:min(len(e.Got), 24)])))
}

// UnreachableHost names the host: its steps are not probed.
func (e *NotSSHError) UnreachableHost() string { return e.Host }

// TimeoutError reports a command that did not end within its timeout
// (Cmd.Timeout, or DefaultCommandTimeout); its process group was killed.
// Retrying may help when the host was only slow; a command that hangs for
// ever (a pull from a registry that never answers) hangs again.
type TimeoutError struct {
	Host    string
	Command string // redacted
	After   time.Duration
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("%s: %q did not finish within %s (killed)", e.Host, e.Command, e.After)
}

// Is makes errors.Is(err, context.DeadlineExceeded) true, for callers that
// only ask whether time ran out.
func (e *TimeoutError) Is(target error) bool { return target == context.DeadlineExceeded }

// ConnectionLostError reports a command cut off because its host's
// connection ended (the host went down, the network was cut, sshd
// stopped). The command may or may not have completed on the host. The
// pool dials again on the next use.
type ConnectionLostError struct {
	Host    string
	Command string // redacted
	Reason  string // why the connection ended
	Err     error
}

func (e *ConnectionLostError) Error() string {
	return fmt.Sprintf("%s: connection lost while running %q (%s); it may or may not have completed there", e.Host, e.Command, e.Reason)
}

func (e *ConnectionLostError) Unwrap() error { return e.Err }

// UnreachableHost names the host whose connection ended (engine.Unreachable).
func (e *ConnectionLostError) UnreachableHost() string { return e.Host }
