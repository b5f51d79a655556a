package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunErrors(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr string
		notUp      bool // no lab.json in the directory
	}{
		{"no args", nil, 2, "usage: haplab", false},
		{"unknown command", []string{"frobnicate", "--dir", "DIR"}, 2, `unknown command "frobnicate"`, false},
		{"status of a lab that is not up", []string{"status", "--dir", "DIR"}, 1, "lab is not up", true},
		{"kill without host", []string{"kill", "--dir", "DIR"}, 2, "kill needs a host name", false},
		{"bad node count", []string{"up", "--nodes", "2", "--dir", "DIR"}, 1, "nodes must be 1, 3 or 5", false},
		{"unknown host", []string{"partition", "--dir", "DIR", "rs9"}, 1, "unknown lab host", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if !tt.notUp {
				labJSON := `{"hosts": [{"name": "rs1", "role": "node", "ip": "10.213.1.1", "container": "haplan-lab-rs1"}]}`
				if err := os.WriteFile(filepath.Join(dir, "lab.json"), []byte(labJSON), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			args := make([]string, len(tt.args))
			for i, a := range tt.args {
				args[i] = strings.ReplaceAll(a, "DIR", dir)
			}
			var stdout, stderr bytes.Buffer
			code := Run(context.Background(), args, &stdout, &stderr)
			if code != tt.wantCode {
				t.Errorf("exit code %d, want %d (stderr %q)", code, tt.wantCode, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tt.wantStderr)
			}
		})
	}
}
