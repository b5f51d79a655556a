package dockerapi

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The CLI fallback reads "No such ..." as absent and nothing else: a
// daemon that does not answer fails the read, naming why.
func TestOrAbsent(t *testing.T) {
	tests := []struct {
		name, docker string
		wantOut      string
		wantFail     string
	}{
		{"found", "echo sha256:abc", "sha256:abc", ""},
		{"no such image", "echo 'Error: No such image: rancher/server:v1.0.1' >&2; exit 1", "absent", ""},
		{"no such container", "echo 'Error response from daemon: No such container: rancher-ha' >&2; exit 1", "absent", ""},
		{"daemon down", "echo 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?' >&2; exit 1", "", "Cannot connect to the Docker daemon"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bin := t.TempDir()
			if err := os.WriteFile(filepath.Join(bin, "docker"), []byte("#!/bin/sh\n"+tt.docker+"\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command("sh", "-c", orAbsent("docker inspect --type image x"))
			cmd.Env = append(os.Environ(), "PATH="+bin+":/usr/bin:/bin")
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if tt.wantFail != "" {
				if err == nil || !strings.Contains(stderr.String(), tt.wantFail) {
					t.Fatalf("err %v, stderr %q; want a failure naming %q", err, stderr.String(), tt.wantFail)
				}
				return
			}
			if err != nil || strings.TrimSpace(string(out)) != tt.wantOut {
				t.Fatalf("out %q, err %v; want %q", out, err, tt.wantOut)
			}
		})
	}
}

// The CLI's inspect line: status, image, exit code; an exit code that is
// missing (an older format) is not known (-1), never 0.
func TestParseInspect(t *testing.T) {
	for out, want := range map[string]Container{
		"exited rancher/agent:v1.0.1 3\n": {Name: "c", Status: "exited", Image: "rancher/agent:v1.0.1", ExitCode: 3},
		"exited rancher/agent:v1.0.1 0\n": {Name: "c", Status: "exited", Image: "rancher/agent:v1.0.1", ExitCode: 0},
		"exited rancher/agent:v1.0.1\n":   {Name: "c", Status: "exited", Image: "rancher/agent:v1.0.1", ExitCode: -1},
		"absent\n":                        {Name: "c", Status: "absent", ExitCode: -1},
	} {
		if got := parseInspect("c", out); got.Name != want.Name || got.Status != want.Status || got.Image != want.Image || got.ExitCode != want.ExitCode {
			t.Errorf("parseInspect(%q) = %+v, want %+v", out, got, want)
		}
	}
}
