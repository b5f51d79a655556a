package standin

import (
	"context"
	"io"
	"log"
	"strings"
	"time"
)

// Agent settings and names.
const (
	// SettingAgentImage is the image cluster-manager runs as the node's
	// agent: it reads the setting's activeValue (cluster-manager v0.1.4
	// rancher/rancher.go GetRancherAgentImage).
	SettingAgentImage = "bootstrap.required.image"
	// DefaultAgentImage is that setting's default (cattle v0.159.7
	// resources/content/cattle-global.properties, line 10).
	DefaultAgentImage = "rancher/agent:v1.0.1"
	// agentContainer is the node's agent container.
	agentContainer = "rancher-ha-agent"
	// settingAgentPrefix + member uuid marks a member whose agent runs:
	// the stand-in's bookkeeping for a connected System HA host.
	settingAgentPrefix = "standin.agent."
)

// AgentLauncher keeps the node's agent container running.
type AgentLauncher interface {
	// Ensure makes sure the agent runs image, creating (and, when the
	// image is missing, pulling) it if it does not run.
	Ensure(ctx context.Context, image string, env []string) error
}

// dockerAgent launches the agent through the node's dockerd, as
// cluster-manager's recreate does: no log line of its own for a pull, the
// daemon's progress on stdout.
type dockerAgent struct {
	d   *docker
	log *log.Logger
	out io.Writer
}

// NewDockerAgent launches agents through the Docker socket at path.
func NewDockerAgent(socket string, lg *log.Logger, out io.Writer) AgentLauncher {
	return &dockerAgent{d: newDocker(socket), log: lg, out: out}
}

func (a *dockerAgent) Ensure(ctx context.Context, image string, env []string) error {
	if ok, err := a.d.running(ctx, agentContainer); err != nil {
		return err
	} else if ok {
		return nil
	}
	a.log.Printf("Creating container %s", agentContainer)
	return a.d.recreate(ctx, containerSpec{
		Name: agentContainer, Image: image, Cmd: []string{"agent"}, Env: env, Network: "host",
		Binds:  []string{"/var/run/docker.sock:/var/run/docker.sock", "/var/lib/rancher:/var/lib/rancher"},
		Labels: map[string]string{"io.rancher.ha.container": "true", "io.rancher.ha.service.name": "agent"},
	}, a.out)
}

// agentImage is the image the node's agent runs.
func (n *node) agentImage(ctx context.Context) string {
	if v, ok, err := n.store.Setting(ctx, SettingAgentImage); err == nil && ok && strings.TrimSpace(v) != "" {
		return strings.TrimSpace(v)
	}
	return DefaultAgentImage
}

// keepAgent keeps the node's agent running and records whether it does.
// A node whose agent cannot start (the image cannot be pulled, dockerd
// refuses) never becomes an active host of System HA.
func (n *node) keepAgent(ctx context.Context) {
	img := n.agentImage(ctx)
	err := n.o.Agent.Ensure(ctx, img, []string{"CATTLE_AGENT_IP=" + n.c.clusterIP})
	if err != nil && ctx.Err() == nil {
		n.o.Log.Printf("Can not launch agent right now: %v", err)
	}
	key := settingAgentPrefix + n.member().UUID
	if err == nil {
		_ = n.store.SetSetting(ctx, key, "active")
	} else {
		_ = n.store.DeleteSetting(ctx, key)
	}
}

// agentLoop keeps the agent running, looking every heartbeat.
func (n *node) agentLoop(ctx context.Context) error {
	t := time.NewTicker(n.o.Heartbeat)
	defer t.Stop()
	for {
		n.keepAgent(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// connectedHosts keeps the members whose agent runs.
func connectedHosts(ctx context.Context, store *Store, ms []Member) ([]Member, error) {
	on, err := store.SettingsWithPrefix(ctx, settingAgentPrefix)
	if err != nil {
		return nil, err
	}
	var out []Member
	for _, m := range ms {
		if on[settingAgentPrefix+m.UUID] == "active" {
			out = append(out, m)
		}
	}
	return out, nil
}
