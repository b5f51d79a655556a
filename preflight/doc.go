// Package preflight checks, before haplan changes anything, that a cluster
// can be installed as its manifest says: the cluster size, SSH and the
// privileges on every node, dockerd, the ports Rancher HA needs, memory,
// clock skew, reachability between nodes, the load balancer host, and the
// external MySQL database (admin and application credentials, version,
// max_connections).
//
// Run drives every check through the small Env interface (the resources
// package implements it) and returns a Report of Findings. A Finding is an
// Error (blocks apply), a Warning (shown, does not block), Info or OK.
// Render prints a Report for people; the Report marshals to JSON for
// machines.
//
// # Timeouts and concurrency
//
// Every check runs under its own Options.Timeout (default 10 s) and Run
// never waits longer than that for one: a check whose host or database
// does not answer is abandoned and reported as timed out, so a wrong
// password or an unreachable host costs seconds, not a hang (k0sctl #572).
// Checks run concurrently, at most Options.Parallelism at once; the checks
// of one host start only once its SSH connection works, and the checks
// between nodes start once every node has been looked at.
//
// # Read-only, secret-free
//
// Checks only read: every remote command is sent with Cmd.Mutates unset
// and Env.Runner is expected to return a read-only runner. No finding
// carries a secret: messages are built from names, addresses and error
// texts, and every message and hint goes through Options.Redact before it
// is stored in the Report.
package preflight
