package resources

// This file is the contract the CLI codes against. Implementations live in
// env.go and the step files.

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/haplan/haplan/transport"
)

// Options configure an Env.
type Options struct {
	// Logger receives debug logs (already redacted by the caller's handler).
	Logger *slog.Logger
	// SSHRetries bounds reconnect attempts for transient connect failures.
	SSHRetries int
	// HTTPTimeout bounds each request to the Rancher API.
	HTTPTimeout time.Duration
	// SSHConfigFiles are the OpenSSH client configurations consulted for
	// what the manifest leaves unsaid (see Env's SSH settings). Nil means
	// ~/.ssh/config then /etc/ssh/ssh_config; an empty, non-nil list means
	// none.
	SSHConfigFiles []string
	// Connect, when set, replaces SSH: it returns the runner for a
	// machine, given the settings haplan resolved for it. For unit tests
	// of steps with a test double (transport/transporttest); nil in
	// every real run.
	Connect func(ctx context.Context, cfg transport.Config) (transport.Runner, error)
}

// LockHolder describes who holds the cluster's apply lock.
type LockHolder struct {
	User    string    `json:"user"`
	Machine string    `json:"machine"`
	PID     int       `json:"pid"`
	Since   time.Time `json:"since"`
	Command string    `json:"command"`
	// Session is set instead of the record when the holder's record cannot
	// be read (a holder that is hung, suspended or cut off runs no
	// statement): the database session that holds the lock.
	Session string `json:"-"`
	// ID is the lock's ID: the database session that holds it, which
	// force-unlock ends.
	ID int64 `json:"-"`
	// Live: the holder renews its record (a statement every 2 s), so the
	// haplan holding it is running.
	Live bool `json:"-"`
}

func (h LockHolder) String() string {
	id := ""
	if h.ID != 0 {
		id = fmt.Sprintf(" (lock ID %d)", h.ID)
	}
	if h.Session != "" {
		return h.Session + id
	}
	return fmt.Sprintf("%s@%s pid %d since %s (%s)%s", h.User, h.Machine, h.PID, h.Since.Format(time.RFC3339), h.Command, id)
}

// LockHeldError is returned by Env.Lock when another haplan holds the lock.
// Not retried: the caller reports the holder and exits with its own code.
type LockHeldError struct {
	Name   string
	Holder *LockHolder // nil when the holder did not record itself
}

func (e *LockHeldError) Error() string {
	if e.Holder == nil {
		return fmt.Sprintf("lock %q is held by another session", e.Name)
	}
	return fmt.Sprintf("lock %q is held by %s", e.Name, e.Holder)
}

// Unlocker releases a lock taken by Env.Lock.
type Unlocker func(ctx context.Context) error
