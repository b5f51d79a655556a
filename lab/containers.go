package lab

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"path"
	"slices"
	"strings"
	"time"
)

// containerInfo is the part of `docker inspect` the lab reads.
type containerInfo struct {
	Name   string `json:"Name"`
	Config struct {
		Labels map[string]string `json:"Labels"`
	} `json:"Config"`
	State struct {
		Status  string `json:"Status"`
		Running bool   `json:"Running"`
	} `json:"State"`
	NetworkSettings struct {
		Networks map[string]struct {
			IPAddress string `json:"IPAddress"`
		} `json:"Networks"`
	} `json:"NetworkSettings"`
}

func (c containerInfo) connected() bool {
	_, ok := c.NetworkSettings.Networks[NetworkName]
	return ok
}

// inspectLab returns every container labelled as the lab's, by name.
func inspectLab(ctx context.Context) (map[string]containerInfo, error) {
	ids, err := docker(ctx, "ps", "-aq", "--filter", "label="+LabelKey+"=1")
	if err != nil {
		return nil, fmt.Errorf("list lab containers: %w", err)
	}
	out := map[string]containerInfo{}
	if ids == "" {
		return out, nil
	}
	js, err := docker(ctx, append([]string{"inspect"}, strings.Fields(ids)...)...)
	if err != nil {
		return nil, fmt.Errorf("inspect lab containers: %w", err)
	}
	var cs []containerInfo
	if err := json.Unmarshal([]byte(js), &cs); err != nil {
		return nil, fmt.Errorf("inspect lab containers: %w", err)
	}
	for _, c := range cs {
		out[strings.TrimPrefix(c.Name, "/")] = c
	}
	return out, nil
}

// runArgs is the `docker run` command line of a lab host. Its label
// haplan.lab.spec is a digest of the rest: Up recreates a host whose
// command line changed.
func runArgs(h Host, image string) []string {
	args := []string{
		"run", "-d", "--init",
		"--name", h.Container, "--hostname", h.Name,
		"--network", NetworkName, "--ip", h.IP,
		"--label", LabelKey + "=1",
		"--label", labelRole + "=" + string(h.Role),
		"--label", labelName + "=" + h.Name,
		"--label", labelImage + "=" + image,
	}
	cmd := []string{string(h.Role)}
	switch {
	case h.Role.HasDockerd():
		args = append(args,
			"--cap-add", "SYS_ADMIN", "--cap-add", "NET_ADMIN",
			"--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
			"-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
			"-v", dockerVolume(h)+":/var/lib/docker")
		mirror := registryIP() + ":5000"
		// haplan-lab-init's node services are sshd and dockerd: what an
		// agent host runs too (the init script, part of the host image,
		// stays as it is).
		cmd = []string{string(RoleNode), "--registry-mirror", "http://" + mirror, "--insecure-registry", mirror}
		if h.Role == RoleAgent {
			cmd = append(cmd, "--add-runtime", runcRuntime+"="+runcWrapperPath, "--default-runtime", runcRuntime)
		}
	case h.Role == RoleRegistry:
		args = append(args, "-p", RegistryAddr+":5000")
	}
	spec := append(append(slices.Clone(args), image), cmd...)
	if h.Role == RoleAgent {
		spec = append(spec, runcWrapper)
	}
	args = append(args, "--label", labelSpec+"="+specDigest(spec))
	return append(append(args, image), cmd...)
}

// The agent hosts' dockerd runs containers with runcWrapper: the
// registration command is `docker run --privileged ...` (cattle's
// docker.register.command), and run.sh starts rancher-agent privileged,
// but a privileged container asks for every capability, and this machine
// cannot grant CAP_SYS_RESOURCE (nor, in docker 20.10's list, PERFMON, BPF,
// CHECKPOINT_RESTORE beyond the host's bounding set): runc fails with
// "unable to apply caps: operation not permitted". The wrapper drops from a
// container's config.json the capabilities its own bounding set lacks, then
// runs runc; everything else of --privileged stays. Up copies it into the
// container before it first starts.
const (
	runcRuntime     = "haplan"
	runcWrapperPath = "/usr/local/sbin/haplan-runc"
	runcWrapper     = `#!/bin/sh
# haplan-runc (haplan lab): runc, but a container gets only the capabilities
# this host can grant (its CapBnd); the machine lacks some that
# --privileged asks for.
bundle= prev=
for a in "$@"; do
	case $prev in --bundle|-b) bundle=$a ;; esac
	case $a in --bundle=*) bundle=${a#--bundle=} ;; esac
	prev=$a
done
if [ -n "$bundle" ] && [ -f "$bundle/config.json" ]; then
	bnd=$(sed -n 's/^CapBnd:[[:space:]]*//p' /proc/self/status)
	i=0
	for c in CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP LINUX_IMMUTABLE \
		NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER SYS_MODULE SYS_RAWIO SYS_CHROOT \
		SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE \
		AUDIT_WRITE AUDIT_CONTROL SETFCAP MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ \
		PERFMON BPF CHECKPOINT_RESTORE; do
		if [ $(( (0x$bnd >> i) & 1 )) -eq 0 ]; then
			sed -i -e "s/\"CAP_$c\",//g" -e "s/,\"CAP_$c\"//g" -e "s/\"CAP_$c\"//g" "$bundle/config.json"
		fi
		i=$((i + 1))
	done
fi
exec /usr/sbin/runc "$@"
`
)

// runcWrapperTar is runcWrapper as the tar stream `docker cp -` takes,
// to unpack in /usr/local/sbin.
func runcWrapperTar() []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	_ = tw.WriteHeader(&tar.Header{Name: path.Base(runcWrapperPath), Mode: 0o755, Size: int64(len(runcWrapper)), Typeflag: tar.TypeReg})
	_, _ = tw.Write([]byte(runcWrapper))
	_ = tw.Close()
	return b.Bytes()
}

// specDigest is the value of the spec label for a command line.
func specDigest(args []string) string {
	sum := sha256.Sum256([]byte(strings.Join(args, "\x00")))
	return hex.EncodeToString(sum[:6])
}

// upToDate reports whether container c was made by runArgs(h, image) as
// it is now. A container from before the spec label is taken as current,
// but for agent hosts, which then had no dockerd.
func upToDate(c containerInfo, h Host, image string) bool {
	if c.Config.Labels[labelImage] != image {
		return false
	}
	spec, ok := c.Config.Labels[labelSpec]
	if !ok {
		return h.Role != RoleAgent
	}
	args := runArgs(h, image)
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "--label" && strings.HasPrefix(args[i+1], labelSpec+"=") {
			return args[i+1] == labelSpec+"="+spec
		}
	}
	return false
}

func registryIP() string { return "10.213.0.2" }

// dockerVolume is the named volume that holds the /var/lib/docker of a
// host with dockerd, so inner images survive container re-creation and
// stay off overlayfs.
func dockerVolume(h Host) string { return h.Container + "-docker" }

// sshBanner dials ip:22 and reads the SSH identification line.
func sshBanner(ctx context.Context, ip string) error {
	d := net.Dialer{Timeout: 2 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(ip, "22"))
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetReadDeadline(time.Now().Add(3 * time.Second)); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "SSH-") {
		return fmt.Errorf("%s:22 answered %q, not SSH", ip, strings.TrimSpace(line))
	}
	return nil
}

// poll calls check every interval until it succeeds or timeout passes.
func poll(ctx context.Context, what string, timeout time.Duration, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		err := check(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s after %s (last error: %v): %w", what, timeout, err, ErrTimeout)
		case <-tick.C:
		}
	}
}

func waitSSH(ctx context.Context, h Host) error {
	return poll(ctx, "wait for sshd on "+h.Name, 60*time.Second, func(ctx context.Context) error {
		return sshBanner(ctx, h.IP)
	})
}

func dockerdUp(ctx context.Context, h Host) error {
	_, err := docker(ctx, "exec", h.Container, "docker", "version", "--format", "{{.Server.Version}}")
	return err
}

func waitDockerd(ctx context.Context, h Host) error {
	return poll(ctx, "wait for dockerd on "+h.Name, 90*time.Second, func(ctx context.Context) error {
		return dockerdUp(ctx, h)
	})
}

// ready waits until the services of a host answer.
func ready(ctx context.Context, h Host) error {
	switch h.Role {
	case RoleNode, RoleSpare, RoleAgent:
		if err := waitSSH(ctx, h); err != nil {
			return err
		}
		return waitDockerd(ctx, h)
	case RoleLB:
		return waitSSH(ctx, h)
	case RoleDB:
		return poll(ctx, "wait for MariaDB", 60*time.Second, func(ctx context.Context) error {
			_, err := docker(ctx, "exec", h.Container, "mariadb-admin", "--silent", "ping")
			return err
		})
	case RoleRegistry:
		return poll(ctx, "wait for the registry", 30*time.Second, func(ctx context.Context) error {
			_, err := docker(ctx, "exec", h.Container, "curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:5000/v2/")
			return err
		})
	}
	return nil
}
