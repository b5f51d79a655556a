package lab

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. None of them is worth retrying without a change.
var (
	// ErrInvalidOptions: the requested lab size is not supported.
	ErrInvalidOptions = errors.New("invalid lab options")
	// ErrNotUp: lab/out has no lab.json; run `haplab up` first.
	ErrNotUp = errors.New("lab is not up")
	// ErrUnknownHost: no lab host has that name.
	ErrUnknownHost = errors.New("unknown lab host")
	// ErrTimeout: a host did not become ready in time (retrying may help
	// on a loaded machine).
	ErrTimeout = errors.New("timed out")
)

// CommandError is a failed command run by the lab (docker, debootstrap, a
// build script). Stderr is kept whole; no lab command carries a secret in
// its arguments, so Args are safe to print.
type CommandError struct {
	Args     []string
	ExitCode int
	Stderr   string
	Err      error
}

func (e *CommandError) Error() string {
	msg := strings.TrimSpace(e.Stderr)
	if len(msg) > 2000 {
		msg = "..." + msg[len(msg)-2000:]
	}
	if msg == "" {
		return fmt.Sprintf("%s: %v", strings.Join(e.Args, " "), e.Err)
	}
	return fmt.Sprintf("%s: %v: %s", strings.Join(e.Args, " "), e.Err, msg)
}

func (e *CommandError) Unwrap() error { return e.Err }
