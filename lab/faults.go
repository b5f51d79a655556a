package lab

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"
)

// Kill stops a host (docker stop): its sshd and dockerd go away as on a
// power-off with a clean shutdown. Its disk and host keys are kept.
func (l *Lab) Kill(ctx context.Context, name string) error {
	h, err := l.Host(name)
	if err != nil {
		return err
	}
	if _, err := docker(ctx, "stop", "-t", "10", h.Container); err != nil {
		return fmt.Errorf("kill %s: %w", name, err)
	}
	return nil
}

// Start starts a stopped host and waits for its services (sshd, and
// dockerd on nodes and agent hosts). A partitioned host is started but stays partitioned;
// then only the processes are waited for, from inside.
func (l *Lab) Start(ctx context.Context, name string) error {
	h, err := l.Host(name)
	if err != nil {
		return err
	}
	if _, err := docker(ctx, "start", h.Container); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	cs, err := inspectLab(ctx)
	if err != nil {
		return err
	}
	if c, ok := cs[h.Container]; ok && !c.connected() && h.Role.HasSSH() {
		return poll(ctx, "wait for sshd on partitioned "+name, 60*time.Second, func(ctx context.Context) error {
			_, err := docker(ctx, "exec", h.Container, "sh", "-c", "test -s /run/sshd.pid && kill -0 $(cat /run/sshd.pid)")
			return err
		})
	}
	return ready(ctx, h)
}

// Partition disconnects a host from the lab network: nothing reaches it
// and it reaches nothing, but it keeps running.
func (l *Lab) Partition(ctx context.Context, name string) error {
	h, err := l.Host(name)
	if err != nil {
		return err
	}
	if _, err := docker(ctx, "network", "disconnect", NetworkName, h.Container); err != nil {
		return fmt.Errorf("partition %s: %w", name, err)
	}
	return nil
}

// Heal reconnects a partitioned host with its own address.
func (l *Lab) Heal(ctx context.Context, name string) error {
	h, err := l.Host(name)
	if err != nil {
		return err
	}
	if _, err := docker(ctx, "network", "connect", "--ip", h.IP, NetworkName, h.Container); err != nil {
		return fmt.Errorf("heal %s: %w", name, err)
	}
	return nil
}

// Exec runs argv on a host with docker exec, behind haplan's back, and
// returns its stdout. A non-zero exit is a *CommandError holding stderr.
func (l *Lab) Exec(ctx context.Context, name string, stdin []byte, argv ...string) ([]byte, error) {
	h, err := l.Host(name)
	if err != nil {
		return nil, err
	}
	args := []string{"exec"}
	if stdin != nil {
		args = append(args, "-i")
	}
	args = append(append(args, h.Container), argv...)
	out, err := run(ctx, stdin, "docker", args...)
	if err != nil {
		return out, fmt.Errorf("exec on %s: %w", name, err)
	}
	return out, nil
}

// RegenerateHostKey gives a host new sshd host keys and makes sshd use
// them. known_hosts is deliberately left alone, so strict clients now see
// a host-key mismatch (the next `haplab up` records the new key).
func (l *Lab) RegenerateHostKey(ctx context.Context, name string) error {
	h, err := l.Host(name)
	if err != nil {
		return err
	}
	if !h.Role.HasSSH() {
		return fmt.Errorf("regenerate host key of %s: role %s runs no sshd: %w", name, h.Role, ErrUnknownHost)
	}
	// SIGHUP makes sshd re-exec itself and read the new keys.
	script := "rm -f /etc/ssh/ssh_host_* && ssh-keygen -A >/dev/null && kill -HUP $(cat /run/sshd.pid)"
	if _, err := docker(ctx, "exec", h.Container, "sh", "-c", script); err != nil {
		return fmt.Errorf("regenerate host key of %s: %w", name, err)
	}
	return waitSSH(ctx, h)
}

// RefreshKnownHosts re-reads every reachable host's ed25519 host key into
// known_hosts, e.g. after RegenerateHostKey. Hosts it cannot read keep
// their old line.
func (l *Lab) RefreshKnownHosts(ctx context.Context) error {
	old := map[string]string{}
	if b, err := os.ReadFile(l.SSH.KnownHostsFile); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if ip, _, ok := strings.Cut(line, " "); ok {
				old[ip] = line
			}
		}
	}
	var lines []string
	for _, h := range l.Hosts {
		if !h.Role.HasSSH() {
			continue
		}
		hk, err := run(ctx, nil, "docker", "exec", h.Container, "cat", "/etc/ssh/ssh_host_ed25519_key.pub")
		line, lerr := knownHostsLine(h.IP, hk)
		switch {
		case err == nil && lerr == nil:
			lines = append(lines, line)
		case old[h.IP] != "":
			lines = append(lines, old[h.IP])
		}
	}
	return writeFileAtomic(l.SSH.KnownHostsFile, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
}
