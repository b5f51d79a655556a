package main

import (
	"fmt"
	"strings"
)

// command describes one haplan command for the main usage text and the
// shell completions, which are both generated from the commands table. The
// per-command usage texts (usageFor) are written by hand; a test checks
// that each one names every flag listed here and that each command accepts
// them.
type command struct {
	name, summary string
	flags         []flagSpec
	// args completes the positional arguments: "file", a fixed list of
	// words, or nothing.
	args argKind
	// words are the positional choices when args is argWords.
	words []string
}

type argKind int

const (
	argNone argKind = iota
	argFile
	argWords
)

// flagSpec is one flag. value names its argument ("" for a boolean flag);
// choices, when set, are the values to complete.
type flagSpec struct {
	name, value, help string
	choices           []string
}

// spelling is how the flag is written in usage and completions: Go's flag
// package takes one or two dashes; haplan documents -f and --long.
func (f flagSpec) spelling() string {
	if len(f.name) == 1 {
		return "-" + f.name
	}
	return "--" + f.name
}

var (
	flagFile        = flagSpec{name: "f", value: "FILE", help: "the manifest (default ./cluster.yaml)"}
	flagParallelism = flagSpec{name: "parallelism", value: "N", help: "steps run at once (default 10)"}
	flagTarget      = flagSpec{name: "target", value: "GLOB", help: "only matching steps and what they depend on"}
)

// commands lists every command in the order the usage shows them.
func commands() []command {
	return []command{
		{name: "init", summary: "write a commented starting cluster.yaml", flags: []flagSpec{
			{name: "name", value: "NAME", help: "the cluster's name"},
			{name: "nodes", value: "LIST", help: "the server nodes"},
			{name: "hosts", value: "LIST", help: "the hosts that join"},
			{name: "db-host", value: "ADDRESS", help: "the MySQL server"},
			{name: "lb", value: "ADDRESS", help: "the load balancer"},
			{name: "haproxy", help: "haplan configures HAProxy"},
			{name: "url", value: "URL", help: "the host registration URL"},
			{name: "o", value: "FILE", help: "where to write it"},
			{name: "force", help: "overwrite an existing file"},
		}},
		{name: "validate", summary: "check the manifest offline and print its errors and warnings", flags: []flagSpec{
			flagFile,
			{name: "json", help: "every diagnostic as one JSON document"},
			{name: "strict", help: "secrets that are not set are errors"},
		}},
		{name: "plan", summary: "show what apply would change", flags: []flagSpec{
			flagFile,
			{name: "out", value: "FILE", help: "save the plan for apply"},
			{name: "detailed-exitcode", help: "exit 0 for no changes, 2 for changes"},
			{name: "format", value: "FORMAT", help: "text, markdown or json", choices: []string{"text", "markdown", "json"}},
			{name: "json", help: "same as --format json"},
			{name: "show-unchanged", help: "also list the unchanged steps"},
			flagParallelism, flagTarget,
		}},
		{name: "apply", summary: "change the machines to match the manifest", args: argFile, flags: []flagSpec{
			flagFile,
			{name: "auto-approve", help: "do not ask for approval"},
			flagParallelism, flagTarget,
			{name: "json", help: "progress as JSON lines"},
			{name: "lock-timeout", value: "DURATION", help: "wait this long for another run's lock"},
		}},
		{name: "show", summary: "render a saved plan (text, markdown, JSON), offline", args: argFile, flags: []flagSpec{
			{name: "format", value: "FORMAT", help: "text, markdown or json", choices: []string{"text", "markdown", "json"}},
			{name: "json", help: "same as --format json"},
			{name: "show-unchanged", help: "also list unchanged steps"},
		}},
		{name: "check", summary: "run the preflight checks (also run by plan and apply)", flags: []flagSpec{
			flagFile,
			{name: "json", help: "the findings as JSON"},
		}},
		{name: "status", summary: "show the cluster's health (read-only)", flags: []flagSpec{
			flagFile,
			{name: "json", help: "the report as JSON"},
		}},
		{name: "backup", summary: "dump the Rancher database (Rancher's documented mysqldump)", flags: []flagSpec{
			flagFile,
			{name: "o", value: "FILE", help: "write the dump to this file"},
		}},
		{name: "restore", summary: "stop the cluster, load a dump, start it again", args: argFile, flags: []flagSpec{
			flagFile,
			{name: "auto-approve", help: "do not ask for approval"},
			{name: "force", help: "restore a dump of another cluster"},
			flagParallelism,
		}},
		{name: "destroy", summary: "remove what haplan made (a backup first; the database kept)", flags: []flagSpec{
			flagFile,
			{name: "drop-database", help: "drop the Rancher database too"},
			{name: "auto-approve", help: "do not ask for the cluster's name"},
			flagTarget, flagParallelism,
		}},
		{name: "graph", summary: "print the step graph (DOT or Mermaid)", flags: []flagSpec{
			flagFile,
			{name: "format", value: "FORMAT", help: "dot or mermaid", choices: []string{"dot", "mermaid"}},
			flagTarget,
		}},
		{name: "force-unlock", summary: "release a lock left behind by a crashed apply", flags: []flagSpec{
			flagFile,
			{name: "force", help: "even from a run that is alive, without asking"},
		}},
		{name: "schema", summary: "print the JSON Schema of the manifest"},
		{name: "completion", summary: "print a shell completion script (bash, zsh, fish)",
			args: argWords, words: []string{"bash", "zsh", "fish"}},
		{name: "version", summary: "print the version", flags: []flagSpec{{name: "json", help: "as JSON"}}},
		{name: "help", summary: "show the usage of a command", args: argWords},
	}
}

// commandNames are the names of every command, in table order.
func commandNames() []string {
	var out []string
	for _, c := range commands() {
		out = append(out, c.name)
	}
	return out
}

func mainUsage() string {
	var b strings.Builder
	b.WriteString(`Usage: haplan <command> [options]

haplan installs a Rancher Server v1.0.1 HA cluster from a manifest
(cluster.yaml or cluster.hcl): it plans by probing the live state, and
applies the plan in parallel over SSH. Re-running is safe: a converged
cluster plans no changes.

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(&b, "  %-14s %s\n", c.name, c.summary)
	}
	b.WriteString(`
Examples:
  haplan validate                      # ./cluster.yaml
  haplan check -f prod/cluster.yaml    # can the machines and the database take it?
  haplan plan --out tonight.plan       # review, then
  haplan apply tonight.plan            # execute exactly that plan
  source <(haplan completion bash)

Run 'haplan <command> --help' for the options and examples of a command.
--no-color (or NO_COLOR set) turns colours off for any command; -v (or
--log-level=debug|info|warn|error) also writes the run's log to stderr.
`)
	return b.String() + exitCodesUsage
}
