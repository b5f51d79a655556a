package lab

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
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

// runArgs is the `docker run` command line of a lab host.
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
	switch h.Role {
	case RoleNode:
		args = append(args,
			"--cap-add", "SYS_ADMIN", "--cap-add", "NET_ADMIN",
			"--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
			"-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
			"-v", dockerVolume(h)+":/var/lib/docker")
		mirror := registryIP() + ":5000"
		cmd = append(cmd, "--registry-mirror", "http://"+mirror, "--insecure-registry", mirror)
	case RoleRegistry:
		args = append(args, "-p", RegistryAddr+":5000")
	}
	return append(append(args, image), cmd...)
}

func registryIP() string { return "10.213.0.2" }

// dockerVolume is the named volume that holds a node's /var/lib/docker,
// so inner images survive container re-creation and stay off overlayfs.
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
	case RoleNode:
		if err := waitSSH(ctx, h); err != nil {
			return err
		}
		return waitDockerd(ctx, h)
	case RoleLB, RoleAgent:
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
