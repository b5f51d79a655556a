package lab

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// imageRepo is the repository of the cached host image; the tag is the
// recipe hash, so a changed recipe builds a new image and an unchanged one
// is never rebuilt.
const imageRepo = "haplan-lab/host"

// cacheDir holds debootstrap's download cache and the temporary root file
// system; it lives outside the repository.
const cacheDir = "/var/cache/haplan-lab"

const unsafeIOConf = "etc/dpkg/dpkg.cfg.d/haplan-lab-unsafe-io"

// ImageFile is a file added to the host image after debootstrap.
type ImageFile struct {
	Path    string
	Mode    os.FileMode
	Content string
}

// ImageRecipe is everything that determines the host image.
type ImageRecipe struct {
	Suite    string
	Variant  string
	Packages []string
	Files    []ImageFile
	Changes  []string // docker import --change instructions
}

// HostImageRecipe is the recipe of the one image every lab host runs.
func HostImageRecipe() ImageRecipe {
	return ImageRecipe{
		Suite:   "bookworm",
		Variant: "minbase",
		Packages: []string{
			"openssh-server", "docker.io", "iproute2", "iptables", "procps",
			"ca-certificates", "python3-minimal", "haproxy", "mariadb-server",
			"mariadb-client", "docker-registry", "curl", "sudo", "netcat-openbsd",
		},
		Files: []ImageFile{
			{Path: "/usr/local/sbin/haplan-lab-init", Mode: 0o755, Content: initScript},
			{Path: "/etc/ssh/sshd_config.d/haplan-lab.conf", Mode: 0o644, Content: sshdConfig},
			{Path: "/etc/haplan-lab/registry.yml", Mode: 0o644, Content: registryConfig},
		},
		Changes: []string{
			"LABEL " + LabelKey + "=1",
			"ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			`ENTRYPOINT ["/usr/local/sbin/haplan-lab-init"]`,
		},
	}
}

// Hash is a short digest of the recipe. Package order does not matter.
func (r ImageRecipe) Hash() string {
	h := sha256.New()
	fmt.Fprintf(h, "haplan-lab host image v1\nsuite %s\nvariant %s\n", r.Suite, r.Variant)
	pkgs := slices.Clone(r.Packages)
	slices.Sort(pkgs)
	fmt.Fprintf(h, "packages %s\n", strings.Join(pkgs, ","))
	files := slices.Clone(r.Files)
	slices.SortFunc(files, func(a, b ImageFile) int { return strings.Compare(a.Path, b.Path) })
	for _, f := range files {
		fmt.Fprintf(h, "file %s %o %d\n%s\n", f.Path, f.Mode, len(f.Content), f.Content)
	}
	for _, c := range r.Changes {
		fmt.Fprintf(h, "change %s\n", c)
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// Image is the image reference of the recipe.
func (r ImageRecipe) Image() string { return imageRepo + ":" + r.Hash() }

// ensureImage builds the host image unless it is already cached.
func ensureImage(ctx context.Context, r ImageRecipe, logf func(string, ...any)) (string, error) {
	ref := r.Image()
	if _, err := docker(ctx, "image", "inspect", "--format", "{{.Id}}", ref); err == nil {
		logf("host image %s: cached", ref)
		return ref, nil
	}
	mirror, err := debianMirror("/etc/apt/sources.list.d")
	if err != nil {
		return "", err
	}
	logf("host image %s: debootstrap %s from %s (about a minute)", ref, r.Suite, mirror)
	if err := os.MkdirAll(filepath.Join(cacheDir, "debs"), 0o755); err != nil {
		return "", fmt.Errorf("create cache dir: %w", err)
	}
	// Root file systems left by an interrupted build are garbage now.
	stale, _ := filepath.Glob(filepath.Join(cacheDir, "rootfs-*"))
	for _, p := range stale {
		_ = os.RemoveAll(p)
	}
	root, err := os.MkdirTemp(cacheDir, "rootfs-")
	if err != nil {
		return "", fmt.Errorf("create rootfs dir: %w", err)
	}
	defer os.RemoveAll(root)
	// dpkg inside debootstrap fsyncs every file; a throw-away root file
	// system does not need that, and skipping it saves tens of seconds.
	if err := os.MkdirAll(filepath.Join(root, unsafeIOConf[:strings.LastIndex(unsafeIOConf, "/")]), 0o755); err != nil {
		return "", fmt.Errorf("prepare rootfs: %w", err)
	}
	if err := os.WriteFile(filepath.Join(root, unsafeIOConf), []byte("force-unsafe-io\n"), 0o644); err != nil {
		return "", fmt.Errorf("prepare rootfs: %w", err)
	}
	args := []string{
		"--variant=" + r.Variant,
		"--cache-dir=" + filepath.Join(cacheDir, "debs"),
		"--include=" + strings.Join(r.Packages, ","),
		r.Suite, root, mirror,
	}
	stop := progress(ctx, 30*time.Second, func(d time.Duration) {
		logf("host image %s: debootstrap still running (%s)", ref, d.Round(time.Second))
	})
	_, err = run(ctx, nil, "debootstrap", args...)
	stop()
	if err != nil {
		return "", fmt.Errorf("debootstrap host image: %w", err)
	}
	if err := finishRootfs(root, r.Files); err != nil {
		return "", err
	}
	logf("host image %s: importing", ref)
	if err := importRootfs(ctx, root, ref, r.Changes); err != nil {
		return "", err
	}
	return ref, nil
}

// progress calls report every interval until the returned stop is called.
func progress(ctx context.Context, interval time.Duration, report func(elapsed time.Duration)) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				report(time.Since(start))
			}
		}
	}()
	return func() { cancel(); <-done }
}

// finishRootfs adds the recipe's files and removes what must not be shared
// by every host: sshd host keys (each host makes its own on first start)
// and apt's package lists and downloads.
func finishRootfs(root string, files []ImageFile) error {
	for _, f := range files {
		p := filepath.Join(root, f.Path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("add %s: %w", f.Path, err)
		}
		if err := os.WriteFile(p, []byte(f.Content), f.Mode); err != nil {
			return fmt.Errorf("add %s: %w", f.Path, err)
		}
		if err := os.Chmod(p, f.Mode); err != nil {
			return fmt.Errorf("add %s: %w", f.Path, err)
		}
	}
	keys, _ := filepath.Glob(filepath.Join(root, "etc/ssh/ssh_host_*"))
	lists, _ := filepath.Glob(filepath.Join(root, "var/lib/apt/lists/*_*"))
	debs, _ := filepath.Glob(filepath.Join(root, "var/cache/apt/archives/*.deb"))
	bins, _ := filepath.Glob(filepath.Join(root, "var/cache/apt/*.bin"))
	unsafe := []string{filepath.Join(root, unsafeIOConf)}
	for _, p := range slices.Concat(keys, lists, debs, bins, unsafe) {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("clean rootfs: %w", err)
		}
	}
	return nil
}

func importRootfs(ctx context.Context, root, ref string, changes []string) error {
	tar := exec.CommandContext(ctx, "tar", "-C", root, "-c", ".")
	pipe, err := tar.StdoutPipe()
	if err != nil {
		return fmt.Errorf("import host image: %w", err)
	}
	if err := tar.Start(); err != nil {
		return fmt.Errorf("import host image: start tar: %w", err)
	}
	args := []string{"import"}
	for _, c := range changes {
		args = append(args, "--change", c)
	}
	args = append(args, "-", ref)
	_, ierr := runPipe(ctx, pipe, "docker", args...)
	// A docker import that failed (dockerd not running) read nothing: tar,
	// blocked writing, ends on the closed pipe instead of waiting for ever.
	pipe.Close()
	terr := tar.Wait()
	if ierr != nil {
		return fmt.Errorf("import host image: %w", ierr)
	}
	if terr != nil {
		return fmt.Errorf("import host image: tar: %w", terr)
	}
	return nil
}

// debianMirror returns the first Debian mirror named in the machine's
// deb822 apt sources whose suites include bookworm.
func debianMirror(dir string) (string, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.sources"))
	if err != nil {
		return "", fmt.Errorf("find apt sources: %w", err)
	}
	slices.Sort(paths)
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return "", fmt.Errorf("read apt sources: %w", err)
		}
		if m := mirrorFromSources(string(b)); m != "" {
			return m, nil
		}
	}
	return "", fmt.Errorf("no Debian bookworm mirror in %s/*.sources", dir)
}

// mirrorFromSources parses deb822 stanzas and returns the URI of the first
// one serving the bookworm suite.
func mirrorFromSources(text string) string {
	for _, stanza := range strings.Split(text, "\n\n") {
		var uri string
		var bookworm bool
		for _, line := range strings.Split(stanza, "\n") {
			k, v, ok := strings.Cut(line, ":")
			if !ok || strings.HasPrefix(line, "#") {
				continue
			}
			switch strings.ToLower(strings.TrimSpace(k)) {
			case "uris":
				if f := strings.Fields(v); len(f) > 0 {
					uri = f[0]
				}
			case "suites":
				bookworm = slices.Contains(strings.Fields(v), "bookworm")
			}
		}
		if uri != "" && bookworm {
			return uri
		}
	}
	return ""
}

// initScript is PID 1 (under docker's tini) of every lab container. It runs
// again on every `docker start`, so it clears what a reboot would clear.
const initScript = `#!/bin/sh
# haplan-lab-init ROLE [ARGS...]: start the services of a lab host.
set -u
role=${1:?usage: haplan-lab-init ROLE [ARGS...]}
shift
sshd_up() {
	mkdir -p /run/sshd
	ssh-keygen -A >/dev/null
}
case "$role" in
node)
	rm -rf /run/docker /run/docker.pid /run/docker.sock /run/containerd
	sshd_up
	/usr/sbin/sshd -E /var/log/sshd.log
	exec dockerd "$@" >>/var/log/dockerd.log 2>&1
	;;
agent|lb)
	sshd_up
	exec /usr/sbin/sshd -D -e
	;;
db)
	mkdir -p /run/mysqld
	# The package's postinst may not have initialised the datadir in the
	# debootstrap chroot; root keeps socket auth, Up adds 'root'@'%'.
	if [ ! -d /var/lib/mysql/mysql ]; then
		mariadb-install-db --user=root --datadir=/var/lib/mysql --skip-test-db \
			--auth-root-authentication-method=socket >/var/log/mariadb-install.log 2>&1 || exit 1
	fi
	exec mariadbd --user=root --bind-address=0.0.0.0
	;;
registry)
	exec docker-registry serve /etc/haplan-lab/registry.yml
	;;
*)
	echo "haplan-lab-init: unknown role $role" >&2
	exit 2
	;;
esac
`

// sshdConfig keeps sshd fast (no reverse DNS) and lets haplan open many
// sessions at once.
const sshdConfig = `# haplan lab
UseDNS no
PermitRootLogin prohibit-password
PasswordAuthentication no
MaxStartups 100:30:200
MaxSessions 64
`

// registryConfig replaces the package's config, which asks for htpasswd
// auth: the lab registry is open, like a private mirror on a trusted net.
const registryConfig = `version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: /var/lib/docker-registry
  delete:
    enabled: true
http:
  addr: :5000
`
