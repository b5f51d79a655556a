package lab

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"
)

func TestRecipeHashStableAndSensitive(t *testing.T) {
	base := HostImageRecipe()
	if got, again := base.Hash(), HostImageRecipe().Hash(); got != again {
		t.Fatalf("hash not stable: %s vs %s", got, again)
	}
	reordered := HostImageRecipe()
	slices.Reverse(reordered.Packages)
	if reordered.Hash() != base.Hash() {
		t.Error("package order changed the hash")
	}
	tests := []struct {
		name   string
		modify func(r *ImageRecipe)
	}{
		{"package added", func(r *ImageRecipe) { r.Packages = append(r.Packages, "vim") }},
		{"file content", func(r *ImageRecipe) { r.Files[0].Content += "# changed\n" }},
		{"file mode", func(r *ImageRecipe) { r.Files[0].Mode = 0o700 }},
		{"suite", func(r *ImageRecipe) { r.Suite = "trixie" }},
		{"import change", func(r *ImageRecipe) { r.Changes = append(r.Changes, "ENV X=1") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := HostImageRecipe()
			tt.modify(&r)
			if r.Hash() == base.Hash() {
				t.Errorf("hash unchanged after %s", tt.name)
			}
		})
	}
}

func TestRecipeHasRequiredPackages(t *testing.T) {
	r := HostImageRecipe()
	for _, p := range []string{"openssh-server", "docker.io", "haproxy", "mariadb-server", "docker-registry", "python3-minimal", "sudo"} {
		if !slices.Contains(r.Packages, p) {
			t.Errorf("recipe lacks %s", p)
		}
	}
}

func TestMirrorFromSources(t *testing.T) {
	const sources = `Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.example.org/debian
Suites: bookworm bookworm-updates
Components: main

Types: deb
URIs: http://security.example.org/debian-security
Suites: bookworm-security
Components: main
`
	if got, want := mirrorFromSources(sources), "http://deb.example.org/debian"; got != want {
		t.Errorf("mirror = %q, want %q", got, want)
	}
	if got := mirrorFromSources("Types: deb\nURIs: http://x/debian-security\nSuites: bookworm-security\n"); got != "" {
		t.Errorf("security-only sources gave mirror %q", got)
	}
}

func TestFinishRootfsRemovesSharedState(t *testing.T) {
	root := t.TempDir()
	for _, p := range []string{"etc/ssh/ssh_host_ed25519_key", "etc/ssh/ssh_host_ed25519_key.pub", "etc/ssh/sshd_config",
		"var/lib/apt/lists/deb_dists_bookworm_InRelease", "var/cache/apt/archives/x.deb"} {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	files := []ImageFile{{Path: "/usr/local/sbin/init", Mode: 0o755, Content: "#!/bin/sh\n"}}
	if err := finishRootfs(root, files); err != nil {
		t.Fatal(err)
	}
	for _, gone := range []string{"etc/ssh/ssh_host_ed25519_key", "etc/ssh/ssh_host_ed25519_key.pub",
		"var/lib/apt/lists/deb_dists_bookworm_InRelease", "var/cache/apt/archives/x.deb"} {
		if _, err := os.Stat(filepath.Join(root, gone)); !os.IsNotExist(err) {
			t.Errorf("%s still in the image (err %v)", gone, err)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "etc/ssh/sshd_config")); err != nil {
		t.Errorf("sshd_config removed: %v", err)
	}
	st, err := os.Stat(filepath.Join(root, "usr/local/sbin/init"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o755 {
		t.Errorf("init mode = %o, want 755", st.Mode().Perm())
	}
}

func TestProgressReportsUntilStopped(t *testing.T) {
	reports := make(chan time.Duration, 100)
	stop := progress(context.Background(), time.Millisecond, func(d time.Duration) {
		select {
		case reports <- d:
		default:
		}
	})
	<-reports // at least one report arrives
	stop()
	// stop has returned, so the reporting goroutine is gone: the count
	// can no longer change.
	n := len(reports)
	runtime.Gosched()
	if len(reports) != n {
		t.Errorf("reports after stop: %d -> %d", n, len(reports))
	}
}
