package fileread

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestRegular(t *testing.T) {
	dir := t.TempDir()
	ok := filepath.Join(dir, "ok")
	if err := os.WriteFile(ok, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := Regular(ok, 5); err != nil || string(b) != "hello" {
		t.Errorf("ok: %q %v", b, err)
	}
	if _, err := Regular(ok, 4); err == nil || !strings.Contains(err.Error(), "larger than 0 KiB") {
		t.Errorf("over the limit: %v", err)
	}
	for _, p := range []string{fifo, dir, "/dev/zero"} {
		if _, err := Regular(p, 1<<20); !errors.Is(err, ErrNotRegular) {
			t.Errorf("%s: %v, want ErrNotRegular", p, err)
		}
	}
	if _, err := Regular(filepath.Join(dir, "nope"), 1); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing: %v", err)
	}
}
