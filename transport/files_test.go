package transport

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func testClient(t *testing.T) (*Client, *testServer) {
	t.Helper()
	f := newFixture(t)
	p := newTestPool(t, PoolOptions{})
	c, err := p.Client(context.Background(), f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, f.srv
}

func TestQuote(t *testing.T) {
	c, _ := testClient(t)
	for _, s := range []string{"", "plain", "it's", `a"b`, "$(id) `id` $HOME", "new\nline", `back\slash`, "'", "''"} {
		got, err := c.Run(context.Background(), Cmd{Line: "printf %s " + Quote(s)})
		if err != nil {
			t.Fatalf("Quote(%q): %v", s, err)
		}
		if string(got.Stdout) != s {
			t.Errorf("Quote(%q) round-trips as %q", s, got.Stdout)
		}
	}
}

func TestReadOnly(t *testing.T) {
	c, srv := testClient(t)
	ro := ReadOnly(c)
	if ro.Host() != "h1" {
		t.Errorf("Host = %q", ro.Host())
	}
	got, err := ro.Run(context.Background(), Cmd{Line: "echo probe"})
	if err != nil || string(got.Stdout) != "probe\n" {
		t.Fatalf("read-only Run of a probe = %q, %v", got.Stdout, err)
	}
	_, err = ro.Run(context.Background(), Cmd{Line: "touch /tmp/should-not-exist", Mutates: true})
	if !errors.Is(err, ErrReadOnly) {
		t.Fatalf("mutating Run = %v, want ErrReadOnly", err)
	}
	for _, want := range []string{"h1", "touch /tmp/should-not-exist"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	err = WriteFile(context.Background(), ro, filepath.Join(t.TempDir(), "f"), []byte("x"), 0o644)
	if !errors.Is(err, ErrReadOnly) {
		t.Errorf("WriteFile through ReadOnly = %v, want ErrReadOnly", err)
	}
	if execs, _ := srv.seen(); len(execs) != 1 {
		t.Errorf("server ran %d commands, want only the probe: %q", len(execs), execs)
	}
}

func TestWriteFile(t *testing.T) {
	c, srv := testClient(t)
	dir := t.TempDir()
	secret := []byte("password=Zq9-very-secret\nline two\x00binary\xff")
	tests := []struct {
		name string
		path string
		data []byte
		mode fs.FileMode
	}{
		{name: "new file in new dirs", path: filepath.Join(dir, "a", "b", "conf"), data: secret, mode: 0o600},
		{name: "replace existing", path: filepath.Join(dir, "a", "b", "conf"), data: []byte("v2\n"), mode: 0o644},
		{name: "empty", path: filepath.Join(dir, "empty"), data: nil, mode: 0o400},
		{name: "odd name", path: filepath.Join(dir, "it's a $(file)"), data: []byte("x"), mode: 0o755},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := WriteFile(context.Background(), c, tt.path, tt.data, tt.mode); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.data) {
				t.Errorf("content = %q, want %q", got, tt.data)
			}
			st, err := os.Stat(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != tt.mode {
				t.Errorf("mode = %v, want %v", st.Mode().Perm(), tt.mode)
			}
			entries, err := os.ReadDir(filepath.Dir(tt.path))
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				if strings.Contains(e.Name(), ".haplan.") {
					t.Errorf("temporary file left behind: %s", e.Name())
				}
			}
		})
	}
	execs, stdins := srv.seen()
	for _, e := range execs {
		if strings.Contains(e, "Zq9-very-secret") {
			t.Errorf("file content leaked into the command line: %q", e)
		}
	}
	if len(stdins) == 0 || !bytes.Equal(stdins[0], secret) {
		t.Errorf("content did not travel over stdin")
	}
}

func TestWriteFileFailureLeavesNoTemp(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, srv *testServer, target string)
	}{
		{name: "target is a directory", setup: func(t *testing.T, _ *testServer, target string) {
			if err := os.MkdirAll(filepath.Join(target, "child"), 0o755); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "rename fails after the temp file was written", setup: func(t *testing.T, srv *testServer, _ string) {
			bin := t.TempDir()
			writeTestFile(t, filepath.Join(bin, "mv"), "#!/bin/sh\necho mv: injected failure >&2\nexit 1\n", 0o755)
			srv.env = append(srv.env, "PATH="+bin+":/usr/bin:/bin")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			dir := t.TempDir()
			target := filepath.Join(dir, "occupied")
			tt.setup(t, f.srv, target)
			before := listTree(t, dir)
			p := newTestPool(t, PoolOptions{})
			c, err := p.Client(context.Background(), f.cfg)
			if err != nil {
				t.Fatal(err)
			}
			err = WriteFile(context.Background(), c, target, []byte("x"), 0o644)
			var pe *ProcessError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want *ProcessError", err)
			}
			if diff := cmp.Diff(before, listTree(t, dir)); diff != "" {
				t.Errorf("tree after failed write (-before +after):\n%s", diff)
			}
		})
	}
}

func TestWriteFileRemovesTempOfCancelledWrite(t *testing.T) {
	c, _ := testClient(t)
	dir := t.TempDir()
	target := filepath.Join(dir, "ca.crt")
	// What a write killed between its temp file and the rename leaves,
	// next to files that are not its own.
	writeTestFile(t, filepath.Join(dir, ".ca.crt.haplan.Dm2TVw"), "half", 0o400)
	writeTestFile(t, filepath.Join(dir, ".other.crt.haplan.Xy12Ab"), "other's", 0o400)
	writeTestFile(t, filepath.Join(dir, ".ca.crt.haplan.notmine"), "not mktemp's", 0o600)
	if err := WriteFile(context.Background(), c, target, []byte("new"), 0o400); err != nil {
		t.Fatal(err)
	}
	want := []string{dir, filepath.Join(dir, ".ca.crt.haplan.notmine"), filepath.Join(dir, ".other.crt.haplan.Xy12Ab"), target}
	if diff := cmp.Diff(want, listTree(t, dir)); diff != "" {
		t.Errorf("tree after the write (-want +got):\n%s", diff)
	}
}

func listTree(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		out = append(out, p)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestReadAndStatFile(t *testing.T) {
	c, _ := testClient(t)
	dir := t.TempDir()
	content := []byte("hello\nworld\n")
	file := filepath.Join(dir, "it's here")
	writeTestFile(t, file, string(content), 0o640)
	if err := os.Chmod(file, 0o640); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(content)

	got, ok, err := ReadFile(context.Background(), c, file)
	if err != nil || !ok || !bytes.Equal(got, content) {
		t.Errorf("ReadFile = %q, %v, %v", got, ok, err)
	}
	got, ok, err = ReadFile(context.Background(), c, filepath.Join(dir, "absent"))
	if err != nil || ok || got != nil {
		t.Errorf("ReadFile(absent) = %q, %v, %v; want nil, false, nil", got, ok, err)
	}
	_, _, err = ReadFile(context.Background(), c, dir)
	var pe *ProcessError
	if !errors.As(err, &pe) {
		t.Errorf("ReadFile(dir) = %v, want *ProcessError", err)
	}

	tests := []struct {
		name string
		path string
		want FileInfo
	}{
		{name: "regular", path: file, want: FileInfo{Exists: true, Mode: 0o640, Size: int64(len(content)), SHA256: hex.EncodeToString(sum[:])}},
		{name: "absent", path: filepath.Join(dir, "absent"), want: FileInfo{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fi, err := StatFile(context.Background(), c, tt.path)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, fi); diff != "" {
				t.Errorf("StatFile (-want +got):\n%s", diff)
			}
		})
	}
	fi, err := StatFile(context.Background(), c, dir)
	if err != nil || !fi.Exists || !fi.Mode.IsDir() || fi.SHA256 != "" {
		t.Errorf("StatFile(dir) = %+v, %v", fi, err)
	}
}

func TestParseStat(t *testing.T) {
	tests := []struct {
		name    string
		out     string
		want    FileInfo
		wantErr bool
	}{
		{name: "setuid regular", out: "4755 10 regular file\n" + strings.Repeat("a", 64) + "\n",
			want: FileInfo{Exists: true, Mode: 0o755 | fs.ModeSetuid, Size: 10, SHA256: strings.Repeat("a", 64)}},
		{name: "empty regular", out: "644 0 regular empty file\n" + strings.Repeat("b", 64),
			want: FileInfo{Exists: true, Mode: 0o644, Size: 0, SHA256: strings.Repeat("b", 64)}},
		{name: "sticky dir", out: "1777 4096 directory\n",
			want: FileInfo{Exists: true, Mode: 0o777 | fs.ModeSticky | fs.ModeDir, Size: 4096}},
		{name: "socket", out: "755 0 socket\n", want: FileInfo{Exists: true, Mode: 0o755 | fs.ModeIrregular}},
		{name: "sha256sum with the name", out: "400 1131 regular file\n" + strings.Repeat("c", 64) + "  /var/lib/rancher/etc/ssl/ca.crt\n",
			want: FileInfo{Exists: true, Mode: 0o400, Size: 1131, SHA256: strings.Repeat("c", 64)}},
		{name: "sha256sum escaping the name", out: "600 1 regular file\n\\" + strings.Repeat("d", 64) + "  /tmp/a\\nb\n",
			want: FileInfo{Exists: true, Mode: 0o600, Size: 1, SHA256: strings.Repeat("d", 64)}},
		{name: "digest not hex", out: "644 3 regular file\n" + strings.Repeat("z", 64) + "  f\n", wantErr: true},
		{name: "garbage", out: "nonsense", wantErr: true},
		{name: "bad mode", out: "9z 1 regular file\n", wantErr: true},
		{name: "missing digest", out: "644 3 regular file\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStat(tt.out)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
