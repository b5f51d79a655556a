package transporttest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"testing"

	"github.com/haplan/haplan/transport"
)

// The file helpers are checked against transport's own ReadFile, StatFile
// and WriteFile: if their lines or formats change, these fail.

func TestReadOf(t *testing.T) {
	ctx := context.Background()
	r := New("rs1")
	r.On(ReadOf("/etc/a b")).Stdout("content\n")
	r.On(ReadOf("/etc/missing")).Absent()
	b, ok, err := transport.ReadFile(ctx, r, "/etc/a b")
	if err != nil || !ok || string(b) != "content\n" {
		t.Errorf("ReadFile = %q, %v, %v", b, ok, err)
	}
	b, ok, err = transport.ReadFile(ctx, r, "/etc/missing")
	if err != nil || ok || b != nil {
		t.Errorf("ReadFile of an absent file = %q, %v, %v", b, ok, err)
	}
	if c := r.Calls(); c[0].Mutates {
		t.Error("ReadFile mutates")
	}
	r.AssertExpectationsMet(t)
}

func TestStatOf(t *testing.T) {
	ctx := context.Background()
	data := []byte("-----BEGIN CERTIFICATE-----\n")
	sum := sha256.Sum256(data)
	cases := []struct {
		name string
		mode fs.FileMode
		data []byte
		want transport.FileInfo
	}{
		{"ca", 0o400, data, transport.FileInfo{Exists: true, Mode: 0o400, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])}},
		{"setuid", 0o755 | fs.ModeSetuid, data, transport.FileInfo{Exists: true, Mode: 0o755 | fs.ModeSetuid, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])}},
		{"empty", 0o644, nil, transport.FileInfo{Exists: true, Mode: 0o644, SHA256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}},
		{"dir", fs.ModeDir | 0o755, nil, transport.FileInfo{Exists: true, Mode: fs.ModeDir | 0o755, Size: 4096}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := New("rs1")
			p := "/var/lib/" + tc.name
			r.On(StatOf(p)).Stat(tc.mode, tc.data)
			fi, err := transport.StatFile(ctx, r, p)
			if err != nil {
				t.Fatal(err)
			}
			if fi != tc.want {
				t.Errorf("StatFile = %+v, want %+v", fi, tc.want)
			}
			r.AssertExpectationsMet(t)
		})
	}
	r := New("rs1")
	r.On(StatOf("/nope")).Absent()
	if fi, err := transport.StatFile(ctx, r, "/nope"); err != nil || fi.Exists {
		t.Errorf("StatFile of an absent file = %+v, %v", fi, err)
	}
}

func TestWrites(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		path string
		mode fs.FileMode
	}{
		{"/var/lib/rancher/etc/haplan/bootstrap.env", 0o600},
		{"/var/lib/rancher/etc/ssl/ca.crt", 0o400},
		{"/etc/haproxy/haproxy.cfg.haplan-new", 0o644},
		{"/var/lib/rancher/etc/haplan/rancher-ha.sh", 0o700},
		{"/usr/local/bin/it's", 0o755 | fs.ModeSetuid},
		{"relative", 0o640},
	}
	r := New("rs1")
	for _, tc := range cases {
		r.On(WriteOf(tc.path)).Once()
	}
	for _, tc := range cases {
		if err := transport.WriteFile(ctx, r, tc.path, []byte("data of "+tc.path), tc.mode); err != nil {
			t.Fatal(err)
		}
	}
	r.AssertExpectationsMet(t)
	ws := r.Writes()
	if len(ws) != len(cases) {
		t.Fatalf("Writes found %d, want %d", len(ws), len(cases))
	}
	for i, tc := range cases {
		w := ws[i]
		if w.Path != tc.path || w.Mode != tc.mode || string(w.Data) != "data of "+tc.path || !w.Cmd.Mutates {
			t.Errorf("write %d = {%q %v %q mutates %v}, want {%q %v}", i, w.Path, w.Mode, w.Data, w.Cmd.Mutates, tc.path, tc.mode)
		}
	}
	// The last write of a path wins; other commands are not writes.
	r.On(WriteOf(cases[0].path))
	r.On(Line("true"))
	if err := transport.WriteFile(ctx, r, cases[0].path, []byte("v2"), 0o600); err != nil {
		t.Fatal(err)
	}
	r.Run(ctx, transport.Cmd{Line: "true"})
	if w, ok := r.Written(cases[0].path); !ok || string(w.Data) != "v2" {
		t.Errorf("Written = %q, %v; want the last write", w.Data, ok)
	}
	if _, ok := r.Written("/elsewhere"); ok {
		t.Error("Written found a path never written")
	}
	if _, ok := ParseWrite(transport.Cmd{Line: "set -e\numask 077\necho hi"}); ok {
		t.Error("ParseWrite took a line that writes nothing")
	}
	// A nil slice is written as an empty file: stdin is non-nil.
	r.On(WriteOf("/empty"))
	if err := transport.WriteFile(ctx, r, "/empty", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if w, _ := r.Written("/empty"); w.Data == nil || len(w.Data) != 0 {
		t.Errorf("empty write data = %#v", w.Data)
	}
}
