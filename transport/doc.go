// Package transport runs commands and moves files on remote hosts over SSH.
//
// The model is k0sproject/rig: a Pool keeps one persistent SSH client per
// host (concurrent callers share a single dial), every command gets its own
// session on that client, and keepalive@openssh.com requests detect dead
// connections so the pool can re-dial them. A Client caps its concurrent
// sessions below OpenSSH's default MaxSessions (10).
//
// Commands are plain shell lines (Cmd.Line) executed by the remote user's
// shell; with Config.Sudo they are wrapped in `sudo -n sh -c '...'`. Secrets
// never travel in a command line: WriteFile sends file content over stdin,
// and every command line and stderr that ends up in an error or a log line
// goes through the pool's Redact function first.
//
// ReadOnly wraps any Runner so that a Cmd marked Mutates fails with
// ErrReadOnly instead of running: plan mode probes through it, so a probe
// that would change a host fails loudly rather than silently.
//
// # Errors and retry policy
//
//   - *ConnectError: the TCP dial or the SSH handshake failed for a transient
//     reason (refused, timeout, reset, EOF). Pool.Client retries these with
//     bounded exponential back-off (PoolOptions.Retries, default 3 retries
//     after the first attempt; PoolOptions.Backoff, default 500ms, doubled each
//     time and capped at 30s), and stops early when ctx is done. The error
//     records how many attempts were made.
//   - *HostKeyError: the host's key is unknown (strict policy) or does not
//     match known_hosts or the pinned key. Never retried: a mismatch may be
//     an attack, and an unknown key needs a human to vouch for it.
//   - *AuthError: the server rejected every offered credential. Not retried
//     by the pool: re-offering the same keys cannot succeed, and repeated
//     failures can trip fail2ban-style lockouts. A caller that knows the
//     cause is transient (a key still being installed) may retry itself.
//   - *ProcessError: the remote command ran and exited non-zero. Never
//     retried by this package: commands may not be idempotent.
//   - *ConnectionLostError: the connection ended while a command ran (host
//     down, network cut, keepalive unanswered). Never retried by this
//     package: the command may or may not have completed; the pool dials
//     again on the next use, and the caller's next probe sees the truth.
//   - ErrReadOnly: a mutating command was attempted through ReadOnly. A
//     programming error in a probe; never retried.
//
// Context cancellation of Run sends the session a SIGKILL "signal" request,
// and, because OpenSSH refuses those in some setups (root logins) and keeps
// a process running after its channel closes, also kills the command's
// process group from a second session: every command line is prefixed with
// `echo HAPLAN_PID=$$ >&2;` and that first stderr line is taken off again.
// Run then returns promptly with an error wrapping ctx.Err().
//
// Remote hosts are assumed to be Linux with a POSIX login shell and GNU or
// BusyBox coreutils (stat -c, sha256sum, mktemp).
package transport
