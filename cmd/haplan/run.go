// Command haplan installs and converges a Rancher Server v1.0.1 HA cluster
// from a declarative manifest: validate it, plan (a reviewable diff of the
// manifest against live state probed over SSH, MySQL and HTTP) and apply the
// plan in parallel over SSH.
//
// The command is thin: it parses arguments, loads the manifest, compiles it
// into steps, hands them to the engine and renders what comes back. Run is
// the whole CLI, testable in-process; main only calls it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/haplan/haplan/internal/didyoumean"
	"github.com/haplan/haplan/redact"
)

// Exit codes, documented in the usage text.
const (
	exitOK      = 0 // success; for plan --detailed-exitcode: no changes
	exitError   = 1 // any error, a refused or declined apply, a failed step
	exitChanges = 2 // plan --detailed-exitcode: changes are pending
	exitLocked  = 3 // another haplan run holds the cluster's lock
	// status: the cluster serves, but something is missing or failing;
	// and the cluster does not serve.
	exitDegraded = 4
	exitDown     = 5
)

// app is one invocation of the CLI: its streams and everything it reads
// from its surroundings, so that tests can replace each of them.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	backend        backend
	// stdinTTY and stdoutTTY report whether the streams are terminals:
	// stdin decides whether apply may ask, stdout chooses the live view
	// and colours.
	stdinTTY, stdoutTTY, stderrTTY bool
	getenv                         func(string) string
	now                            func() time.Time
	// interrupts delivers SIGINT/SIGTERM to apply; nil means subscribe to
	// the process's signals for the duration of the apply.
	interrupts <-chan os.Signal
	// noColor: --no-color was given.
	noColor bool
	// logLevel, when set (-v, --log-level=LEVEL), is the level from which
	// the run's log records are also written to stderr.
	logLevel *slog.Level
}

// Run runs the haplan command line and returns the process exit code.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{
		stdin: stdin, stdout: stdout, stderr: stderr,
		backend:   realBackend(),
		stdinTTY:  isTerminal(stdin),
		stdoutTTY: isTerminal(stdout),
		stderrTTY: isTerminal(stderr),
		getenv:    os.Getenv,
		now:       time.Now,
	}
	return a.run(ctx, args)
}

func isTerminal(v any) bool {
	f, ok := v.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(f.Fd()))
}

func (a *app) run(ctx context.Context, args []string) int {
	args, err := a.globalFlags(args)
	if err != nil {
		fmt.Fprintf(a.stderr, "haplan: %v\n", err)
		return exitError
	}
	if len(args) == 0 {
		fmt.Fprint(a.stderr, mainUsage())
		return exitError
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "validate":
		return a.validate(ctx, rest)
	case "plan":
		return a.plan(ctx, rest)
	case "apply":
		return a.apply(ctx, rest)
	case "show":
		return a.show(ctx, rest)
	case "init":
		return a.init(ctx, rest)
	case "graph":
		return a.graph(ctx, rest)
	case "check":
		return a.check(ctx, rest)
	case "status":
		return a.status(ctx, rest)
	case "backup":
		return a.backup(ctx, rest)
	case "restore":
		return a.restore(ctx, rest)
	case "destroy":
		return a.destroy(ctx, rest)
	case "force-unlock":
		return a.forceUnlock(ctx, rest)
	case "schema":
		return a.schema(ctx, rest)
	case "completion":
		return a.completion(ctx, rest)
	case "version", "--version", "-version":
		return a.version(rest)
	case "help", "-h", "-help", "--help":
		if len(rest) == 0 {
			fmt.Fprint(a.stdout, mainUsage())
			return exitOK
		}
		if u, ok := usageFor(rest[0]); ok {
			fmt.Fprint(a.stdout, u)
			return exitOK
		}
		return a.unknownCommand(rest[0])
	}
	return a.unknownCommand(cmd)
}

// unknownCommand names what was typed and the closest command.
func (a *app) unknownCommand(cmd string) int {
	hint := ""
	if s := didyoumean.Closest(cmd, commandNames()); s != "" {
		hint = fmt.Sprintf(" (did you mean %q?)", s)
	}
	fmt.Fprintf(a.stderr, "haplan: unknown command %q%s\nRun 'haplan help' for the list of commands.\n", cmd, hint)
	return exitError
}

// color reports whether human output to a stream may use ANSI colours.
func (a *app) color(tty bool) bool { return tty && !a.noColor && a.getenv("NO_COLOR") == "" }

// newFlags returns a command's flag set. Its errors are written by
// parseFlags; -h prints the command's usage to stdout.
func (a *app) newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	fs.Usage = func() {
		u, _ := usageFor(name)
		fmt.Fprint(a.stdout, u)
	}
	return fs
}

// parseFlags parses args allowing flags after positional arguments
// (`haplan apply plan.json --auto-approve`). It returns the positional
// arguments and, on -h, done with exit code 0. A flag the command does
// not have is named as typed, with the closest one it has.
func parseFlags(fs *flag.FlagSet, args []string) (pos []string, code int, done bool) {
	if bad := unknownFlag(fs, args); bad != "" {
		hint := ""
		var names []string
		fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
		if s := didyoumean.Closest(strings.TrimLeft(bad, "-"), names); s != "" {
			hint = fmt.Sprintf(" (did you mean --%s?)", s)
		}
		fmt.Fprintf(fs.Output(), "haplan %s: unknown flag %s%s\nRun 'haplan %s --help' for its options.\n", fs.Name(), bad, hint, fs.Name())
		return nil, exitError, true
	}
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, exitOK, true
			}
			fmt.Fprintf(fs.Output(), "Run 'haplan %s --help' for its options.\n", fs.Name())
			return nil, exitError, true
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, 0, false
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// unknownFlag is the first argument that looks like a flag the set does
// not define ("" when none), as typed.
func unknownFlag(fs *flag.FlagSet, args []string) string {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return ""
		}
		if len(a) < 2 || a[0] != '-' {
			continue
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if name == "h" || name == "help" {
			continue
		}
		f := fs.Lookup(name)
		if f == nil {
			return strings.SplitN(a, "=", 2)[0]
		}
		if bf, ok := f.Value.(interface{ IsBoolFlag() bool }); !hasValue && (!ok || !bf.IsBoolFlag()) {
			i++ // its value
		}
	}
	return ""
}

// parseOnlyFlags parses the flags of a command that takes no positional
// argument: -h prints its usage, a stray argument is an error naming it.
func (a *app) parseOnlyFlags(fs *flag.FlagSet, args []string) (code int, done bool) {
	pos, code, done := parseFlags(fs, args)
	if done {
		return code, true
	}
	if len(pos) > 0 {
		hint := ""
		if fs.Lookup("f") != nil {
			hint = " (the manifest is given with -f)"
		}
		fmt.Fprintf(a.stderr, "haplan %s: unexpected argument %q%s\n", fs.Name(), pos[0], hint)
		return exitError, true
	}
	return 0, false
}

// stringList is a repeatable flag (--target a --target b).
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// output is a command's stdout and stderr after the manifest's secrets are
// known: everything written through it is redacted. flush must run before
// the command returns.
type output struct {
	red       *redact.Redactor
	out, errw *redact.Writer
}

func (a *app) newOutput(secrets []string) *output {
	red := redact.New(secrets...)
	return &output{red: red, out: red.Writer(a.stdout), errw: red.Writer(a.stderr)}
}

func (o *output) flush() {
	_ = o.out.Flush()
	_ = o.errw.Flush()
}

// printError writes err to w, one "Error:" line per joined error.
func printError(w io.Writer, err error) {
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	for _, e := range errs {
		lines := strings.Split(strings.TrimRight(e.Error(), "\n"), "\n")
		fmt.Fprintf(w, "Error: %s\n", lines[0])
		for _, l := range lines[1:] {
			fmt.Fprintf(w, "  %s\n", l)
		}
	}
}

const exitCodesUsage = `
Exit codes:
  0  success (plan --detailed-exitcode: no changes)
  1  error, refused or declined apply, or a failed step
  2  changes present (plan --detailed-exitcode only)
  3  the cluster is locked by another haplan run
  4  status: the cluster is degraded (it serves, something is missing or failing)
  5  status: the cluster is down (it does not serve)
`

// usageFor returns the usage text of a command.
func usageFor(name string) (string, bool) {
	u, ok := usages[name]
	return u, ok
}

// usages are the per-command usage texts, written by hand (a test checks
// them against the commands table).
var usages = map[string]string{
	"check": `Usage: haplan check [-f cluster.yaml] [--json]

Checks what the cluster needs before anything is changed: every node reachable
over SSH with the privileges needed and dockerd answering; the ports Rancher
uses free on every node and reachable between nodes; the admin and the
application MySQL credentials (the latter from the bootstrap node, as the
server will connect); max_connections at 50 per node; memory; clock skew; the
load balancer host. plan and apply run the same checks first: errors stop
them before the first change, warnings are shown.

Options:
  -f FILE   the manifest (default ./cluster.yaml)
  --json    the findings as JSON

Examples:
  haplan check
  haplan check -f prod/cluster.yaml --json
` + exitCodesUsage,
	"backup": `Usage: haplan backup [-f cluster.yaml] [-o FILE]

Dumps the Rancher database the way Rancher documents it (mysqldump -c -e
--default-character-set=utf8 --single-transaction --skip-set-charset
--add-drop-database -B DB), run on this machine against the database server
reached as the admin account reaches it (directly, or through a node's SSH
connection), the password in a 0600 option file. The dump (mode 0600) gets a
record next to it, FILE.json: cluster, server image, cluster size,
registration URL, time, SHA-256. Needs the mysqldump client here
(Debian/Ubuntu: apt-get install mariadb-client).

Options:
  -f FILE   the manifest (default ./cluster.yaml)
  -o FILE   the dump (default .haplan/backups/CLUSTER-TIME.sql next to the manifest)

Examples:
  haplan backup
  haplan backup -o /srv/backups/rancher-$(date +%F).sql
` + exitCodesUsage,
	"restore": `Usage: haplan restore [-f cluster.yaml] [options] FILE

Restores a dump made by haplan backup: plans stopping rancher-ha on every
node and replacing the database with the dump, asks for 'yes', applies it,
then plans and applies the manifest, which starts every node again,
together, from the same script. The Rancher server is down in between. It
refuses a dump of another cluster (its registration URL) unless --force, and
a dump of another server version than rancher.image. Needs the mysql client
here. The cluster is locked for the whole restore.

Options:
  -f FILE            the manifest (default ./cluster.yaml)
  --auto-approve     do not ask (required when stdin is not a terminal)
  --force            restore a dump of a cluster with another registration URL
  --parallelism N    steps run at once (default 10)

Examples:
  haplan restore .haplan/backups/prod-20261201T120000Z.sql
` + exitCodesUsage,
	"destroy": `Usage: haplan destroy [-f cluster.yaml] [options]

Removes what haplan made, in the reverse of the install, after a backup of
the database (under .haplan/backups/ next to the manifest): the hosts'
registrations, agents and CA; every node's rancher-ha containers, the
bootstrap server and /var/lib/rancher/etc; the load balancer's
configuration (replaced by one that serves nothing); the application
user's grants. The database is kept unless --drop-database. Shows the plan
first and asks for the cluster's name on a terminal; without a terminal it
refuses unless --auto-approve. A second destroy finds nothing to do.

Options:
  -f FILE            the manifest (default ./cluster.yaml)
  --drop-database    drop the Rancher database too
  --auto-approve     do not ask for the cluster's name
  --target GLOB      destroy only matching steps and what they depend on
  --parallelism N    steps run at once (default 10)

Examples:
  haplan destroy
  haplan destroy --target 'destroy.host[h3]'
` + exitCodesUsage,
	"status": `Usage: haplan status [-f cluster.yaml] [--json]

Shows the cluster's health in one screen, reading only: every node's
rancher-ha container, image and own API; the cluster table's members
(heartbeat moving, index, master; read twice, 6 s apart); System HA's
hosts; every registered host in Rancher and its rancher-agent; the
database's connections against max_connections; the load balancer's /ping
verified against the cluster CA, and the certificate it presents (a
warning within 60 days of its end). The verdict comes first: OK, DEGRADED
or DOWN, each finding naming what it is about.

Options:
  -f FILE   the manifest (default ./cluster.yaml)
  --json    the report as JSON (format_version "1")

Examples:
  haplan status
  haplan status --json | jq '.findings'
  haplan status || echo "exit $?: 4 degraded, 5 down"
` + exitCodesUsage,
	"validate": `Usage: haplan validate [-f cluster.yaml] [--json] [--strict]

Checks the manifest offline, with no secret and no network: unknown keys,
wrong types and bad values are errors, reported with file:line:col and the
source line; warnings are shown too. This is the pull-request check: a
secret that is not set (an environment variable, a file) is a warning, as
CI jobs have no production secrets; --strict makes it an error, as plan and
apply see it.

Options:
  -f FILE    the manifest (default ./cluster.yaml)
  --json     every diagnostic as one JSON document on stdout (format_version,
             valid, error_count, warning_count, diagnostics with ranges)
  --strict   secrets that are not set are errors

Examples:
  haplan validate
  haplan validate -f prod/cluster.yaml --json | jq '.diagnostics[]'
` + exitCodesUsage,
	"plan": `Usage: haplan plan [-f cluster.yaml] [options]

Probes the live state (read-only) and shows what apply would change: a sorted
summary, one line per step, then details, warnings and checks.

Options:
  -f FILE                the manifest (default ./cluster.yaml)
  --out FILE             save the plan; 'haplan apply FILE' executes exactly it
  --detailed-exitcode    exit 0 for no changes, 2 for changes, 1 for errors
  --format FORMAT        text (default), markdown (a pull-request comment), json
  --json                 same as --format json (versioned, never holds a secret)
  --show-unchanged       also list the steps that are already as declared
  --parallelism N        probes run at once (default 10)
  --target GLOB          plan only matching steps and what they depend on;
                         repeatable, e.g. --target 'cert.distribute[*]'

Examples:
  haplan plan
  haplan plan --out tonight.plan
  haplan plan --format markdown > comment.md
  haplan plan --detailed-exitcode || [ $? -eq 2 ]
` + exitCodesUsage,
	"apply": `Usage: haplan apply [-f cluster.yaml] [options] [PLANFILE]

Without PLANFILE: plans, shows the plan and asks for 'yes' on a terminal.
With PLANFILE (from 'haplan plan --out'): re-probes, refuses if anything
changed since the plan was made, then executes exactly that plan.
The cluster is locked for the whole apply. The first Ctrl-C stops starting
new steps and lets running ones finish; the second cancels them. A debug log
is written under .haplan/logs/ next to the manifest.

Options:
  -f FILE            the manifest (default ./cluster.yaml)
  --auto-approve     do not ask (required when stdin is not a terminal)
  --parallelism N    steps run at once (default 10)
  --target GLOB      apply only matching steps and what they depend on
  --json             progress as JSON lines, one object per event
  --lock-timeout D   wait up to D (e.g. 10m) for the lock another run holds,
                     instead of exiting 3 at once

Examples:
  haplan apply
  haplan apply --auto-approve
  haplan plan --out tonight.plan && haplan apply tonight.plan
` + exitCodesUsage,
	"init": `Usage: haplan init [options]

Writes a commented starting manifest (default ./cluster.yaml) from flags,
asking on a terminal for what they leave out, that validates as written.
Secrets are referenced from HAPLAN_DB_PASSWORD and HAPLAN_DB_ADMIN_PASSWORD.

Options:
  --name NAME        the cluster's name (default rancher)
  --nodes LIST       the server nodes: ADDRESS or NAME=ADDRESS, comma-separated
                     (1, 3 or 5; unnamed ones are rs1, rs2, ...)
  --hosts LIST       the hosts that join, the same way (h1, h2, ...)
  --db-host ADDRESS  the MySQL server
  --lb ADDRESS       the load balancer
  --haproxy          haplan configures HAProxy on the load balancer
  --url URL          the host registration URL (default https://<lb>)
  -o FILE            where to write it (default ./cluster.yaml); - for stdout
  --force            overwrite an existing file

Examples:
  haplan init
  haplan init --nodes 10.0.0.11,10.0.0.12,10.0.0.13 --db-host 10.0.0.20 --lb 10.0.0.10 --haproxy
` + exitCodesUsage,
	"show": `Usage: haplan show [--format text|markdown|json] [--show-unchanged] PLANFILE

Renders a plan saved by 'haplan plan --out' as plan shows it, without the
manifest and without touching the network: review a plan file attached to
a pull request or a change ticket. A plan file never holds a secret.

Options:
  --format FORMAT    text (default), markdown (a pull-request comment), json
  --json             same as --format json
  --show-unchanged   also list the steps that are already as declared

Examples:
  haplan show tonight.plan
  haplan show --format markdown tonight.plan > comment.md
` + exitCodesUsage,
	"graph": `Usage: haplan graph [-f cluster.yaml] [--format dot|mermaid] [--target GLOB]

Prints the step graph: DOT (default) for Graphviz, or Mermaid, which renders
in a pull request. Nothing is probed; only the SSH connections are prepared.

Options:
  -f FILE           the manifest (default ./cluster.yaml)
  --format FORMAT   dot (default) or mermaid
  --target GLOB     only matching steps and what they depend on; repeatable

Examples:
  haplan graph | dot -Tsvg > steps.svg
  haplan graph --format mermaid
  haplan graph --target 'ha.start[*]'
` + exitCodesUsage,
	"schema": `Usage: haplan schema

Prints the JSON Schema (draft 2020-12) of the manifest, for editors and CI
linters. It describes the fields of cluster.yaml and, block for block, of
cluster.hcl; rules it cannot express (unique names, secrets that must exist)
are left to 'haplan validate'. The same schema is committed as
schema/cluster.schema.json.

Examples:
  haplan schema > cluster.schema.json
  # first line of cluster.yaml, for editors with yaml-language-server:
  # yaml-language-server: $schema=./cluster.schema.json
` + exitCodesUsage,
	"completion": `Usage: haplan completion bash|zsh|fish

Prints a completion script for the shell: commands, their flags, the values
of --format and file names where a file is expected.

Examples:
  haplan completion bash > /etc/bash_completion.d/haplan
  source <(haplan completion bash)                       # or in ~/.bashrc
  haplan completion zsh > "${fpath[1]}/_haplan"
  haplan completion fish > ~/.config/fish/completions/haplan.fish
` + exitCodesUsage,
	"version": `Usage: haplan version [--json]

Prints the version haplan was built from (the module version, or the VCS
revision of a build from a work tree, "+dirty" when it had changes), the Go
version and the platform.

Options:
  --json   as JSON

Examples:
  haplan version
  haplan version --json` + exitCodesUsage,
	"help": `Usage: haplan help [command]

Prints the usage of haplan, or of one command.

Examples:
  haplan help
  haplan help plan
` + exitCodesUsage,
	"force-unlock": `Usage: haplan force-unlock [-f cluster.yaml] [--force] [LOCK_ID]

Releases the cluster's apply lock. Use it only when the run named by the
lock is gone (crashed, killed, machine lost): two applies at once can break
the cluster. The lock is a MySQL named lock on the cluster's database
server; the message of a refused apply names its holder and its lock ID.
With LOCK_ID, only that lock is released (not one another run took since).
A lock whose holder is alive (it renews it every 2 s) is refused without
--force. On a terminal it asks first; "No lock was held" when none was.

Options:
  -f FILE   the manifest (default ./cluster.yaml)
  --force   release it even from a run that is alive, and do not ask

Examples:
  haplan force-unlock -f prod/cluster.yaml 1234` + exitCodesUsage,
}

// globalFlags takes the flags that work anywhere on the line, for every
// command (--no-color like NO_COLOR, -v, --log-level=LEVEL) out of args.
func (a *app) globalFlags(args []string) ([]string, error) {
	var kept []string
	for i, arg := range args {
		if arg == "--" {
			kept = append(kept, args[i:]...)
			break
		}
		if arg == "--no-color" || arg == "-no-color" {
			a.noColor = true
			continue
		}
		if arg == "-v" || arg == "--verbose" {
			lvl := slog.LevelInfo
			a.logLevel = &lvl
			continue
		}
		if name, val, ok := strings.Cut(arg, "="); ok && (name == "--log-level" || name == "-log-level") {
			var lvl slog.Level
			if err := lvl.UnmarshalText([]byte(val)); err != nil {
				return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", val)
			}
			a.logLevel = &lvl
			continue
		}
		kept = append(kept, arg)
	}
	return kept, nil
}
