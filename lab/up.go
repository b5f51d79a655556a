package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
)

// dockerParallelism bounds concurrent docker CLI calls: the machine has two
// cores and dockerd serialises much of the work anyway.
const dockerParallelism = 6

// Up brings the lab to the requested size and writes lab/out. It is
// idempotent: a cached image and running hosts are reused; stopped or
// partitioned hosts are started and reconnected; surplus nodes and agent
// hosts are removed.
func Up(ctx context.Context, o Options) (*Lab, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	logf := o.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	start := time.Now()
	unlock, err := lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	dir, root, err := resolveDirs(o)
	if err != nil {
		return nil, err
	}
	hosts := Layout(o)
	l := newLab(dir, hosts)

	pub, err := ensureClientKey(l.SSH.IdentityFile)
	if err != nil {
		return nil, err
	}
	for _, p := range []string{l.DB.AdminPasswordFile, l.DB.PasswordFile} {
		if err := ensureSecret(p); err != nil {
			return nil, err
		}
	}
	if _, err := run(ctx, nil, "docker", "version", "--format", "{{.Server.Version}}"); err != nil {
		return nil, fmt.Errorf("the machine's dockerd does not answer (make lab starts it: lab/prereqs.sh): %w", err)
	}
	image, err := ensureImage(ctx, HostImageRecipe(), logf)
	if err != nil {
		return nil, err
	}
	l.HostImage = image
	if err := ensureNetwork(ctx, logf); err != nil {
		return nil, err
	}
	existing, err := inspectLab(ctx)
	if err != nil {
		return nil, err
	}
	if err := removeSurplus(ctx, existing, hosts, logf); err != nil {
		return nil, err
	}
	created, err := ensureContainers(ctx, hosts, existing, image, logf)
	if err != nil {
		return nil, err
	}
	pruneHostImages(ctx, image, logf)

	// The stand-in image builds and pushes while the hosts come up.
	var g errgroup.Group
	g.Go(func() error {
		reg, _ := l.Host("registry")
		if err := ready(ctx, reg); err != nil {
			return err
		}
		return pushRancherImage(ctx, root, logf)
	})
	if err := prepareHosts(ctx, l, pub, created, logf); err != nil {
		return nil, errors.Join(err, g.Wait())
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(l.Manifest, RenderManifest(hosts), 0o644); err != nil {
		return nil, err
	}
	if err := l.save(); err != nil {
		return nil, err
	}
	logf("lab up in %s: %d nodes, %d spares, %d hosts; manifest %s", time.Since(start).Round(100*time.Millisecond), o.Nodes, o.Spares, o.Hosts, l.Manifest)
	return l, nil
}

func resolveDirs(o Options) (dir, root string, err error) {
	dir, root = o.Dir, o.RepoRoot
	if root == "" {
		if root, err = RepoRoot(); err != nil {
			return "", "", err
		}
	}
	if dir == "" {
		dir = filepath.Join(root, "lab", "out")
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return "", "", fmt.Errorf("lab dir: %w", err)
	}
	return dir, root, nil
}

func newLab(dir string, hosts []Host) *Lab {
	l := &Lab{
		Dir: dir, Network: NetworkName, Subnet: Subnet, Gateway: Gateway,
		Registry: RegistryAddr, RegistryMirror: "http://" + registryIP() + ":5000",
		RancherImage: RancherImage,
		Hosts:        hosts,
		IPs:          map[string]string{},
	}
	for _, h := range hosts {
		l.IPs[h.Name] = h.IP
	}
	l.Manifest = l.Path(fileManifest)
	l.SSH = SSH{User: "root", Port: 22, IdentityFile: l.Path(fileKey), KnownHostsFile: l.Path(fileKnownHosts)}
	l.DB = DB{Host: "10.213.0.3", Port: 3306, AdminUser: "root",
		AdminPasswordFile: l.Path(fileAdminSecret), PasswordFile: l.Path(fileDBPassSecret)}
	return l
}

func ensureNetwork(ctx context.Context, logf func(string, ...any)) error {
	subnet, err := docker(ctx, "network", "inspect", "--format", "{{range .IPAM.Config}}{{.Subnet}}{{end}}", NetworkName)
	if err == nil {
		if subnet != Subnet {
			return fmt.Errorf("network %s exists with subnet %q, want %s: remove it (haplab down)", NetworkName, subnet, Subnet)
		}
		return nil
	}
	logf("network %s %s", NetworkName, Subnet)
	_, err = docker(ctx, "network", "create", "--driver", "bridge",
		"--subnet", Subnet, "--gateway", Gateway, "--label", LabelKey+"=1", NetworkName)
	if err != nil {
		return fmt.Errorf("create network: %w", err)
	}
	return nil
}

// removeSurplus removes nodes, spares and agent hosts beyond the requested size.
func removeSurplus(ctx context.Context, existing map[string]containerInfo, hosts []Host, logf func(string, ...any)) error {
	want := map[string]bool{}
	for _, h := range hosts {
		want[h.Container] = true
	}
	var surplus, volumes []string
	for name, c := range existing {
		role := Role(c.Config.Labels[labelRole])
		if !want[name] && role.HasDockerd() {
			surplus = append(surplus, name)
			if role.HasDockerd() {
				volumes = append(volumes, dockerVolume(Host{Container: name}))
			}
		}
	}
	if len(surplus) == 0 {
		return nil
	}
	slices.Sort(surplus)
	logf("removing %d surplus hosts", len(surplus))
	if _, err := docker(ctx, append([]string{"rm", "-f", "-v"}, surplus...)...); err != nil {
		return fmt.Errorf("remove surplus hosts: %w", err)
	}
	if len(volumes) > 0 {
		if _, err := docker(ctx, append([]string{"volume", "rm", "-f"}, volumes...)...); err != nil {
			return fmt.Errorf("remove volumes of surplus nodes: %w", err)
		}
	}
	return nil
}

// ensureContainers creates, starts and reconnects hosts as needed and
// returns the names of the hosts it created. A host whose image or command
// line changed (upToDate) is made anew.
func ensureContainers(ctx context.Context, hosts []Host, existing map[string]containerInfo, image string, logf func(string, ...any)) (map[string]bool, error) {
	created := map[string]bool{}
	var todo []Host
	for _, h := range hosts {
		c, ok := existing[h.Container]
		current := ok && upToDate(c, h, image)
		if current && c.State.Running && c.connected() {
			continue
		}
		todo = append(todo, h)
		if !current {
			created[h.Name] = true
		}
	}
	if len(todo) == 0 {
		logf("hosts: all %d running", len(hosts))
		return created, nil
	}
	logf("hosts: %d to create, %d to start or reconnect", len(created), len(todo)-len(created))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(dockerParallelism)
	for _, h := range todo {
		c, ok := existing[h.Container]
		g.Go(func() error {
			if created[h.Name] {
				return createHost(gctx, h, image, ok)
			}
			if !c.connected() {
				if _, err := docker(gctx, "network", "connect", "--ip", h.IP, NetworkName, h.Container); err != nil {
					return fmt.Errorf("reconnect %s: %w", h.Name, err)
				}
			}
			if !c.State.Running {
				if _, err := docker(gctx, "start", h.Container); err != nil {
					return fmt.Errorf("start %s: %w", h.Name, err)
				}
			}
			return nil
		})
	}
	return created, g.Wait()
}

func createHost(ctx context.Context, h Host, image string, replace bool) error {
	if replace {
		if _, err := docker(ctx, "rm", "-f", h.Container); err != nil {
			return fmt.Errorf("replace %s: %w", h.Name, err)
		}
	}
	if h.Role.HasDockerd() {
		if _, err := docker(ctx, "volume", "create", "--label", LabelKey+"=1", dockerVolume(h)); err != nil {
			return fmt.Errorf("volume for %s: %w", h.Name, err)
		}
	}
	args := runArgs(h, image)
	if h.Role != RoleAgent {
		if _, err := docker(ctx, args...); err != nil {
			return fmt.Errorf("create %s: %w", h.Name, err)
		}
		return nil
	}
	// docker run -d, with the runc wrapper in place before dockerd starts.
	create := append([]string{"create"}, slices.DeleteFunc(slices.Clone(args[1:]), func(a string) bool { return a == "-d" })...)
	if _, err := docker(ctx, create...); err != nil {
		return fmt.Errorf("create %s: %w", h.Name, err)
	}
	if _, err := run(ctx, runcWrapperTar(), "docker", "cp", "-", h.Container+":"+path.Dir(runcWrapperPath)); err != nil {
		return fmt.Errorf("create %s: install %s: %w", h.Name, runcWrapperPath, err)
	}
	if _, err := docker(ctx, "start", h.Container); err != nil {
		return fmt.Errorf("create %s: %w", h.Name, err)
	}
	return nil
}

// prepareHosts waits for every host, installs the client key, collects
// host keys into known_hosts, sets up the database admin and checks HAProxy
// on a new LB.
func prepareHosts(ctx context.Context, l *Lab, pub string, created map[string]bool, logf func(string, ...any)) error {
	logf("hosts: waiting for sshd, dockerd, MariaDB")
	lines := make([]string, len(l.Hosts))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(dockerParallelism)
	for i, h := range l.Hosts {
		g.Go(func() error {
			if err := ready(gctx, h); err != nil {
				return err
			}
			switch h.Role {
			case RoleDB:
				return setupDBAdmin(gctx, l, h)
			case RoleRegistry:
				return nil
			case RoleLB:
				if created[h.Name] {
					if err := checkHAProxy(gctx, h); err != nil {
						return err
					}
				}
			}
			hk, err := installAuthorizedKey(gctx, h, pub)
			if err != nil {
				return err
			}
			lines[i], err = knownHostsLine(h.IP, hk)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	lines = slices.DeleteFunc(lines, func(s string) bool { return s == "" })
	return writeFileAtomic(l.SSH.KnownHostsFile, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
}

// installAuthorizedKey adds pub to root's authorized keys unless it is
// there (keys a test added stay) and returns the host's ed25519 public host
// key, in one docker exec (they are slow).
func installAuthorizedKey(ctx context.Context, h Host, pub string) ([]byte, error) {
	script := `set -e
umask 077
read -r key
f=/root/.ssh/authorized_keys
mkdir -p /root/.ssh
touch $f
blob=$(printf '%s' "$key" | cut -d' ' -f2)
grep -qF "$blob" $f || printf '%s\n' "$key" >>$f
chown -R root:root /root/.ssh
chmod 700 /root/.ssh
chmod 600 $f
cat /etc/ssh/ssh_host_ed25519_key.pub`
	hk, err := run(ctx, []byte(pub+"\n"), "docker", "exec", "-i", h.Container, "sh", "-c", script)
	if err != nil {
		return nil, fmt.Errorf("authorized_keys and host key on %s: %w", h.Name, err)
	}
	return hk, nil
}

// setupDBAdmin lets root log in from the lab network with the lab's admin
// password. The SQL, password included, goes over stdin, never argv.
func setupDBAdmin(ctx context.Context, l *Lab, h Host) error {
	pw, err := readSecret(l.DB.AdminPasswordFile)
	if err != nil {
		return err
	}
	sql := fmt.Sprintf("CREATE USER IF NOT EXISTS 'root'@'%%' IDENTIFIED BY '%[1]s';\n"+
		"ALTER USER 'root'@'%%' IDENTIFIED BY '%[1]s';\n"+
		"GRANT ALL PRIVILEGES ON *.* TO 'root'@'%%' WITH GRANT OPTION;\n"+
		"FLUSH PRIVILEGES;\n", pw)
	if _, err := run(ctx, []byte(sql), "docker", "exec", "-i", h.Container, "mariadb"); err != nil {
		// The error holds argv and stderr only; scrub the password in case
		// the server quoted the statement back.
		var ce *CommandError
		if errors.As(err, &ce) {
			ce.Stderr = strings.ReplaceAll(ce.Stderr, pw, "<redacted>")
		}
		return fmt.Errorf("set up database admin: %w", err)
	}
	return nil
}

// checkHAProxy proves that `service haproxy start|reload|stop` works without
// systemd, with a trivial config, then restores the packaged config and
// leaves HAProxy stopped: haplan configures and starts it.
func checkHAProxy(ctx context.Context, h Host) error {
	const script = `set -e
cfg=/etc/haproxy/haproxy.cfg
cp -p $cfg /tmp/haproxy.cfg.orig
printf 'global\n  daemon\ndefaults\n  mode http\n  timeout connect 1s\n  timeout client 1s\n  timeout server 1s\nfrontend check\n  bind 127.0.0.1:18080\n  http-request return status 200\n' >$cfg
trap 'service haproxy stop >/dev/null 2>&1 || true; cp -p /tmp/haproxy.cfg.orig $cfg; rm -f /tmp/haproxy.cfg.orig' EXIT
service haproxy start
curl -fsS -o /dev/null http://127.0.0.1:18080/
service haproxy reload
sleep 0.5
curl -fsS -o /dev/null http://127.0.0.1:18080/
`
	if _, err := run(ctx, nil, "docker", "exec", h.Container, "sh", "-c", script); err != nil {
		return fmt.Errorf("check haproxy service on %s: %w", h.Name, err)
	}
	return nil
}

// pushRancherImage builds the stand-in rancher/server image with
// lab/standin/build.sh and pushes it to the lab registry, so a plain
// `docker pull rancher/server:v1.0.1` on a node gets it.
func pushRancherImage(ctx context.Context, root string, logf func(string, ...any)) error {
	build := filepath.Join(root, "lab", "standin", "build.sh")
	if _, err := os.Stat(build); err == nil {
		logf("registry: building %s with lab/standin/build.sh", RancherImage)
		if _, err := runIn(ctx, root, "bash", build); err != nil {
			return fmt.Errorf("build stand-in image: %w", err)
		}
	} else if _, err := docker(ctx, "image", "inspect", "--format", "{{.Id}}", RancherImage); err != nil {
		return fmt.Errorf("no lab/standin/build.sh and no local %s image: %w", RancherImage, err)
	} else {
		logf("registry: no lab/standin/build.sh; pushing the local %s", RancherImage)
	}
	for _, img := range []string{RancherImage, NextRancherImage, AgentImage, AgentInstanceImage} {
		target := RegistryAddr + "/" + img
		if _, err := docker(ctx, "tag", img, target); err != nil {
			return fmt.Errorf("tag stand-in image: %w", err)
		}
		if _, err := docker(ctx, "push", target); err != nil {
			return fmt.Errorf("push stand-in image: %w", err)
		}
		logf("registry: pushed %s", target)
	}
	return nil
}

// pruneHostImages removes host images of older recipes; one still used by
// a container (say, a registry or db kept from an older lab) stays.
func pruneHostImages(ctx context.Context, keep string, logf func(string, ...any)) {
	refs, err := docker(ctx, "images", imageRepo, "--format", "{{.Repository}}:{{.Tag}}")
	if err != nil {
		return
	}
	for _, ref := range strings.Fields(refs) {
		if ref == keep {
			continue
		}
		if _, err := docker(ctx, "rmi", ref); err == nil {
			logf("removed old host image %s", ref)
		}
	}
}
