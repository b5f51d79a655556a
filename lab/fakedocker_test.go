package lab

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fakeDocker puts a `docker` on PATH that logs its arguments and prints
// canned answers, and returns a function reading the log.
func fakeDocker(t *testing.T) func() []string {
	t.Helper()
	bin := t.TempDir()
	logPath := filepath.Join(bin, "calls.log")
	script := `#!/bin/sh
echo "$*" >>"` + logPath + `"
case "$*" in
"ps -aq --filter label=haplan.lab=1") echo c1; echo c2 ;;
"volume ls -q --filter label=haplan.lab=1") echo v1 ;;
"network ls -q --filter label=haplan.lab=1") echo n1 ;;
"images -q --filter label=haplan.lab=1") echo i1 ;;
esac
`
	if err := os.WriteFile(filepath.Join(bin, "docker"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	return func() []string {
		b, err := os.ReadFile(logPath)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Split(strings.TrimSpace(string(b)), "\n")
	}
}

func TestDownRemovesOnlyLabelledObjects(t *testing.T) {
	calls := fakeDocker(t)
	out := filepath.Join(t.TempDir(), "out")
	if err := os.MkdirAll(filepath.Join(out, "ssh"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Down(context.Background(), DownOptions{Dir: out}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"ps -aq --filter label=haplan.lab=1",
		"rm -f -v c1 c2",
		"volume ls -q --filter label=haplan.lab=1",
		"volume rm -f v1",
		"network ls -q --filter label=haplan.lab=1",
		"network rm n1",
	}
	if diff := cmp.Diff(want, calls()); diff != "" {
		t.Errorf("docker calls (-want +got):\n%s", diff)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("lab/out not removed: %v", err)
	}
}

func TestDownImages(t *testing.T) {
	calls := fakeDocker(t)
	if err := Down(context.Background(), DownOptions{Dir: filepath.Join(t.TempDir(), "out"), Images: true}); err != nil {
		t.Fatal(err)
	}
	got := calls()
	for _, want := range []string{"rmi -f i1", "rmi 127.0.0.1:5000/rancher/server:v1.0.1"} {
		if !contains(got, want) {
			t.Errorf("no %q in docker calls %q", want, got)
		}
	}
	if contains(got, "rmi rancher/server:v1.0.1") {
		t.Error("down removed the stand-in build's own image")
	}
}

func TestFaultCommands(t *testing.T) {
	calls := fakeDocker(t)
	l := newLab(t.TempDir(), Layout(Options{Nodes: 3, Hosts: 3}))
	ctx := context.Background()
	if err := l.Kill(ctx, "h3"); err != nil {
		t.Fatal(err)
	}
	if err := l.Partition(ctx, "rs2"); err != nil {
		t.Fatal(err)
	}
	if err := l.Heal(ctx, "rs2"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Exec(ctx, "rs1", []byte("x"), "cat"); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"stop -t 10 haplan-lab-h3",
		"network disconnect haplan-lab haplan-lab-rs2",
		"network connect --ip 10.213.1.2 haplan-lab haplan-lab-rs2",
		"exec -i haplan-lab-rs1 cat",
	}
	if diff := cmp.Diff(want, calls()); diff != "" {
		t.Errorf("docker calls (-want +got):\n%s", diff)
	}
	if err := l.Kill(ctx, "nope"); err == nil {
		t.Error("Kill of an unknown host succeeded")
	}
}
