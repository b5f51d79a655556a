package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/haplan/haplan/manifests"
)

// runPlain runs the CLI with no backend: enough for commands that load no
// manifest.
func runPlain(args ...string) (code int, stdout, stderr string) {
	var out, errw bytes.Buffer
	a := &app{stdin: strings.NewReader(""), stdout: &out, stderr: &errw,
		getenv: func(string) string { return "" }, now: time.Now}
	code = a.run(context.Background(), args)
	return code, out.String(), errw.String()
}

func TestSchemaCommand(t *testing.T) {
	code, out, errw := runPlain("schema")
	if code != exitOK || out != string(manifests.Schema()) {
		t.Errorf("haplan schema: exit %d, stdout differs from manifests.Schema() (%d vs %d bytes); stderr %q",
			code, len(out), len(manifests.Schema()), errw)
	}
	if code, _, errw := runPlain("schema", "extra"); code != exitError || !strings.Contains(errw, `unexpected argument "extra"`) {
		t.Errorf("haplan schema extra: exit %d, stderr %q", code, errw)
	}
}

// bashComplete sources the bash script and asks it to complete words, the
// last one being the word under the cursor.
func bashComplete(t *testing.T, script string, words ...string) []string {
	t.Helper()
	var quoted []string
	for _, w := range words {
		quoted = append(quoted, "'"+w+"'")
	}
	prog := script + "\nCOMP_WORDS=(" + strings.Join(quoted, " ") + ")\nCOMP_CWORD=" +
		strconv.Itoa(len(words)-1) + "\n_haplan\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n"
	cmd := exec.Command("bash", "--norc", "--noprofile", "-c", prog)
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bash: %v\n%s", err, out)
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l != "" {
			got = append(got, l)
		}
	}
	sort.Strings(got)
	return got
}

func TestCompletionBash(t *testing.T) {
	code, script, errw := runPlain("completion", "bash")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errw)
	}
	f := filepath.Join(t.TempDir(), "haplan.bash")
	if err := os.WriteFile(f, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("bash", "-n", f).CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v\n%s", err, out)
	}
	for _, c := range commands() {
		if !regexp.MustCompile(`(?m)^\s+` + regexp.QuoteMeta(c.name) + `\)$`).MatchString(script) {
			t.Errorf("bash script has no case for %s", c.name)
		}
	}
	for _, tc := range []struct {
		words []string
		want  []string
	}{
		{[]string{"haplan", ""}, sorted(commandNames())},
		{[]string{"haplan", "pl"}, []string{"plan"}},
		{[]string{"haplan", "plan", "--d"}, []string{"--detailed-exitcode"}},
		{[]string{"haplan", "plan", "--format", ""}, []string{"json", "markdown", "text"}},
		{[]string{"haplan", "graph", "-format", "m"}, []string{"mermaid"}},
		{[]string{"haplan", "completion", ""}, []string{"bash", "fish", "zsh"}},
		{[]string{"haplan", "help", "force"}, []string{"force-unlock"}},
		{[]string{"haplan", "apply", "--a"}, []string{"--auto-approve"}},
		{[]string{"haplan", "plan", "--parallelism", ""}, nil},
	} {
		if diff := cmp.Diff(tc.want, bashComplete(t, script, tc.words...)); diff != "" {
			t.Errorf("completing %q (-want +got):\n%s", tc.words, diff)
		}
	}
}

func sorted(s []string) []string {
	s = append([]string(nil), s...)
	sort.Strings(s)
	return s
}

func TestCompletionZshAndFish(t *testing.T) {
	for _, shell := range []string{"zsh", "fish"} {
		code, script, errw := runPlain("completion", shell)
		if code != exitOK {
			t.Fatalf("%s: exit %d: %s", shell, code, errw)
		}
		for _, c := range commands() {
			if !strings.Contains(script, c.name) {
				t.Errorf("%s script lacks command %s", shell, c.name)
			}
			for _, fl := range c.flags {
				word := fl.spelling()
				if shell == "fish" {
					word = map[bool]string{true: "-s ", false: "-l "}[len(fl.name) == 1] + fl.name
				}
				if !strings.Contains(script, word) {
					t.Errorf("%s script lacks %s %s", shell, c.name, word)
				}
			}
		}
		// The shells are not installed on every machine; check the
		// syntax where they are.
		if path, err := exec.LookPath(shell); err == nil {
			f := filepath.Join(t.TempDir(), "haplan."+shell)
			if err := os.WriteFile(f, []byte(script), 0o600); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(path, "-n", f).CombinedOutput(); err != nil {
				t.Errorf("%s -n: %v\n%s", shell, err, out)
			}
		}
	}
	if code, _, errw := runPlain("completion", "tcsh"); code != exitError || !strings.Contains(errw, `unknown shell "tcsh"`) {
		t.Errorf("completion tcsh: exit %d, %q", code, errw)
	}
	if code, _, errw := runPlain("completion"); code != exitError || !strings.Contains(errw, "name one shell") {
		t.Errorf("completion: exit %d, %q", code, errw)
	}
}

// TestUsageMatchesCommandTable keeps the hand-written usage texts, the
// commands table (main usage and completions) and the flags the commands
// really accept in step.
func TestUsageMatchesCommandTable(t *testing.T) {
	_, main, _ := runPlain("--help")
	optionRE := regexp.MustCompile(`(?m)^  (--?[a-z][a-z-]*)`)
	for _, c := range commands() {
		t.Run(c.name, func(t *testing.T) {
			if !regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(c.name) + ` +` + regexp.QuoteMeta(c.summary) + `$`).MatchString(main) {
				t.Errorf("main usage does not list %s", c.name)
			}
			u, ok := usageFor(c.name)
			if !ok {
				t.Fatalf("no usage text")
			}
			if !strings.Contains(u, "Examples:\n  haplan") {
				t.Errorf("usage has no examples:\n%s", u)
			}
			var table, documented []string
			for _, f := range c.flags {
				table = append(table, f.spelling())
			}
			if i := strings.Index(u, "Options:\n"); i >= 0 {
				opts, _, _ := strings.Cut(u[i:], "\n\n")
				for _, m := range optionRE.FindAllStringSubmatch(opts, -1) {
					documented = append(documented, m[1])
				}
			}
			if diff := cmp.Diff(sorted(table), sorted(documented)); diff != "" {
				t.Errorf("table flags vs the usage's Options (-table +usage):\n%s", diff)
			}
			if c.name == "help" {
				return
			}
			// -h prints the command's own usage, and every flag of the
			// table is accepted by the command's flag set.
			if code, out, errw := runPlain(c.name, "-h"); code != exitOK || out != u || errw != "" {
				t.Errorf("%s -h: exit %d, stdout is not its usage:\n%s\nstderr:\n%s", c.name, code, out, errw)
			}
			for _, f := range c.flags {
				arg := f.spelling()
				switch f.value {
				case "":
				case "DURATION":
					arg += "=1s"
				default:
					arg += "=1"
				}
				if code, _, errw := runPlain(c.name, arg, "-h"); code != exitOK {
					t.Errorf("%s does not accept %s: exit %d\n%s", c.name, arg, code, errw)
				}
			}
		})
	}
	if code, out, _ := runPlain("help", "completion"); code != exitOK || !strings.Contains(out, "haplan completion bash") {
		t.Errorf("help completion: exit %d\n%s", code, out)
	}
}
