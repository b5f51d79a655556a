package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/haplan/haplan/manifests"
)

// schema prints the manifest's JSON Schema (the committed
// schema/cluster.schema.json is a copy of it).
func (a *app) schema(_ context.Context, args []string) int {
	if code, done := a.noArgs("schema", args); done {
		return code
	}
	_, _ = a.stdout.Write(manifests.Schema())
	return exitOK
}

// noArgs handles the arguments of a command that takes none: -h prints its
// usage, anything else is an error.
func (a *app) noArgs(name string, args []string) (code int, done bool) {
	return a.parseOnlyFlags(a.newFlags(name), args)
}

func (a *app) completion(_ context.Context, args []string) int {
	fs := a.newFlags("completion")
	pos, code, done := parseFlags(fs, args)
	if done {
		return code
	}
	if len(pos) != 1 {
		fmt.Fprint(a.stderr, "haplan completion: name one shell: bash, zsh or fish\n")
		return exitError
	}
	var err error
	switch pos[0] {
	case "bash":
		err = writeBashCompletion(a.stdout)
	case "zsh":
		err = writeZshCompletion(a.stdout)
	case "fish":
		err = writeFishCompletion(a.stdout)
	default:
		fmt.Fprintf(a.stderr, "haplan completion: unknown shell %q (bash, zsh or fish)\n", pos[0])
		return exitError
	}
	if err != nil {
		printError(a.stderr, err)
		return exitError
	}
	return exitOK
}

// positional returns the words to complete for c's positional argument.
func (c command) positional() []string {
	if c.name == "help" {
		return commandNames()
	}
	return c.words
}

// flagWords are every spelling of c's flags, for word lists.
func (c command) flagWords() string {
	var out []string
	for _, f := range c.flags {
		out = append(out, f.spelling())
	}
	return strings.Join(append(out, "--help"), " ")
}

func writeBashCompletion(w io.Writer) error {
	var b strings.Builder
	b.WriteString(`# bash completion for haplan.
# Load it now:     source <(haplan completion bash)
# or for good:     haplan completion bash > /etc/bash_completion.d/haplan
_haplan() {
    local cur prev cmd
    cur="${COMP_WORDS[COMP_CWORD]}"
    prev="${COMP_WORDS[COMP_CWORD-1]}"
    if [[ ${COMP_CWORD} -eq 1 ]]; then
        COMPREPLY=( $(compgen -W "` + strings.Join(commandNames(), " ") + `" -- "${cur}") )
        return 0
    fi
    cmd="${COMP_WORDS[1]}"
    case "${cmd}:${prev}" in
`)
	for _, c := range commands() {
		for _, f := range c.flags {
			pat := fmt.Sprintf("%s:%s", c.name, f.spelling())
			if len(f.name) > 1 {
				pat += "|" + c.name + ":-" + f.name // Go's flag package takes one dash too
			}
			switch {
			case f.choices != nil:
				fmt.Fprintf(&b, "        %s) COMPREPLY=( $(compgen -W %q -- \"${cur}\") ); return 0 ;;\n", pat, strings.Join(f.choices, " "))
			case f.value == "FILE":
				fmt.Fprintf(&b, "        %s) COMPREPLY=( $(compgen -f -- \"${cur}\") ); return 0 ;;\n", pat)
			case f.value != "":
				fmt.Fprintf(&b, "        %s) COMPREPLY=(); return 0 ;;\n", pat)
			}
		}
	}
	b.WriteString(`    esac
    case "${cmd}" in
`)
	for _, c := range commands() {
		words := c.positional()
		fmt.Fprintf(&b, "        %s)\n", c.name)
		fmt.Fprintf(&b, "            if [[ ${cur} == -* ]]; then COMPREPLY=( $(compgen -W %q -- \"${cur}\") )\n", c.flagWords())
		switch {
		case c.args == argFile:
			b.WriteString("            else COMPREPLY=( $(compgen -f -- \"${cur}\") )\n")
		case len(words) > 0:
			fmt.Fprintf(&b, "            elif [[ ${COMP_CWORD} -eq 2 ]]; then COMPREPLY=( $(compgen -W %q -- \"${cur}\") )\n", strings.Join(words, " "))
		}
		b.WriteString("            fi ;;\n")
	}
	b.WriteString(`    esac
    return 0
}
complete -o filenames -F _haplan haplan
`)
	_, err := io.WriteString(w, b.String())
	return err
}

// zshQuote escapes text for a single-quoted zsh word inside an _arguments
// or _describe spec, where ':' '[' ']' and '\' are special.
func zshQuote(s string) string {
	s = strings.NewReplacer(`\`, `\\`, `:`, `\:`, `[`, `\[`, `]`, `\]`).Replace(s)
	return strings.ReplaceAll(s, `'`, `'\''`)
}

func writeZshCompletion(w io.Writer) error {
	var b strings.Builder
	b.WriteString(`#compdef haplan
# zsh completion for haplan.
# Load it now:     source <(haplan completion zsh)
# or for good:     haplan completion zsh > "${fpath[1]}/_haplan"
_haplan() {
    local -a cmds
    cmds=(
`)
	for _, c := range commands() {
		fmt.Fprintf(&b, "        '%s:%s'\n", c.name, zshQuote(c.summary))
	}
	b.WriteString(`    )
    if (( CURRENT == 2 )); then
        _describe -t commands 'haplan command' cmds
        return
    fi
    local cmd=${words[2]}
    shift words
    (( CURRENT-- ))
    case ${cmd} in
`)
	for _, c := range commands() {
		fmt.Fprintf(&b, "        %s)\n            _arguments \\\n", c.name)
		for _, f := range c.flags {
			spec := fmt.Sprintf("%s[%s]", f.spelling(), zshQuote(f.help))
			switch {
			case f.choices != nil:
				spec += fmt.Sprintf(":%s:(%s)", strings.ToLower(f.value), strings.Join(f.choices, " "))
			case f.value == "FILE":
				spec += ":file:_files"
			case f.value != "":
				spec += ":" + strings.ToLower(f.value) + ": "
			}
			fmt.Fprintf(&b, "                '%s' \\\n", spec)
		}
		switch words := c.positional(); {
		case c.args == argFile:
			b.WriteString("                '1:plan file:_files' \\\n")
		case len(words) > 0:
			fmt.Fprintf(&b, "                '1:%s:(%s)' \\\n", c.name, strings.Join(words, " "))
		}
		b.WriteString("                '--help[show the usage]' ;;\n")
	}
	b.WriteString(`    esac
}
if [[ ${funcstack[1]} == _haplan ]]; then
    _haplan "$@"
else
    compdef _haplan haplan
fi
`)
	_, err := io.WriteString(w, b.String())
	return err
}

// fishQuote single-quotes s for fish.
func fishQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

func writeFishCompletion(w io.Writer) error {
	var b strings.Builder
	b.WriteString(`# fish completion for haplan.
# Load it now:     haplan completion fish | source
# or for good:     haplan completion fish > ~/.config/fish/completions/haplan.fish
complete -c haplan -f
`)
	for _, c := range commands() {
		fmt.Fprintf(&b, "complete -c haplan -n __fish_use_subcommand -a %s -d %s\n", c.name, fishQuote(c.summary))
	}
	for _, c := range commands() {
		cond := fishQuote("__fish_seen_subcommand_from " + c.name)
		for _, f := range c.flags {
			opt := "-l " + f.name
			if len(f.name) == 1 {
				opt = "-s " + f.name
			}
			switch {
			case f.choices != nil:
				opt += " -x -a " + fishQuote(strings.Join(f.choices, " "))
			case f.value == "FILE":
				opt += " -r -F"
			case f.value != "":
				opt += " -x"
			}
			fmt.Fprintf(&b, "complete -c haplan -n %s %s -d %s\n", cond, opt, fishQuote(f.help))
		}
		switch words := c.positional(); {
		case c.args == argFile:
			fmt.Fprintf(&b, "complete -c haplan -n %s -F\n", cond)
		case len(words) > 0:
			fmt.Fprintf(&b, "complete -c haplan -n %s -a %s\n", cond, fishQuote(strings.Join(words, " ")))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
