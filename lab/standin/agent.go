package standin

import (
	"context"
	"errors"
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
)

// AgentLauncher keeps the node's agent container running.
type AgentLauncher interface {
	// Ensure makes sure the agent runs image, creating (and, when the
	// image is missing, pulling) it if it does not run.
	Ensure(ctx context.Context, image string, env []string) error
	// Identity is the machine's identity for its agent. The real agent
	// keeps it in /var/lib/rancher/state, which the rancher-ha container
	// does not mount; the stand-in takes the Docker engine's ID, which
	// lasts as long (rancher-ha restarts, /var/lib/rancher/etc removed,
	// haplan's destroy) and is new on a rebuilt machine.
	Identity(ctx context.Context) (string, error)
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

func (a *dockerAgent) Identity(ctx context.Context) (string, error) {
	var info struct {
		ID string `json:"ID"`
	}
	if err := a.d.getJSON(ctx, "/info", &info); err != nil {
		return "", err
	}
	if info.ID == "" {
		return "", errors.New("the Docker engine reports no ID")
	}
	return "engine-" + info.ID, nil
}

// agentImage is the image the node's agent runs.
func (n *node) agentImage(ctx context.Context) string {
	if v, ok, err := n.store.Setting(ctx, SettingAgentImage); err == nil && ok && strings.TrimSpace(v) != "" {
		return strings.TrimSpace(v)
	}
	return DefaultAgentImage
}

// keepAgent keeps the node's agent running and, while it runs, reports
// for it. A node whose agent cannot start (the image cannot be pulled,
// dockerd refuses) never becomes a host of System HA; one whose agent
// stops reporting (the node is dead) stays one, "reconnecting".
func (n *node) keepAgent(ctx context.Context) {
	img := n.agentImage(ctx)
	err := n.o.Agent.Ensure(ctx, img, []string{"CATTLE_AGENT_IP=" + n.c.clusterIP})
	if err != nil {
		if ctx.Err() == nil {
			n.o.Log.Printf("Can not launch agent right now: %v", err)
		}
		return
	}
	if err := n.reportAgent(ctx); err != nil && ctx.Err() == nil {
		n.o.Log.Printf("Failed to report the node's host: %v", err)
	}
}

// reportAgent is what the node's connected agent does (cluster-manager
// v0.1.4 service/cluster_service.go launchRancherAgent: rancher/agent
// registered with System HA's registration token, CATTLE_AGENT_IP the
// cluster IP): the server keeps the node as a host of System HA, created
// on the agent's first report and pinged by the later ones; a host that
// was removed has a deactivated agent, whose reports change nothing. The
// stand-in reports on the agent's behalf, with the machine's identity
// (AgentLauncher.Identity), so the node is the same host across rancher-ha
// restarts, a destroy and a restore.
func (n *node) reportAgent(ctx context.Context) error {
	id, err := n.o.Agent.Identity(ctx)
	if err != nil {
		return err
	}
	return n.api.reportHAAgent(ctx, id, n.o.Hostname, n.c.clusterIP)
}

// reportHAAgent records one report of a node's agent with identity id:
// its agent in System HA's account (made on the first report), then the
// ping with the node's host.
func (a *API) reportHAAgent(ctx context.Context, id, hostname, ip string) error {
	access, secret, err := generateKeys()
	if err != nil {
		return err
	}
	ag := AgentRecord{Key: "ha-node:" + id, AccountID: systemHAProjectID, Access: access, Secret: secret, UUID: newUUID(),
		Created: a.now().UnixMilli(), RegLife: lifecycle{State: "active"}, State: "active"}
	if _, err := a.Registry.AddAgent(ctx, &ag); err != nil {
		return err
	}
	if ag.State != "active" {
		return nil
	}
	var ev pingEvent
	ev.Name = "reply.ping"
	ev.Data.Resources = []pingResource{
		{Type: "host", UUID: id, Hostname: hostname},
		{Type: "ipAddress", UUID: ip, Address: ip, HostUUID: id},
	}
	return a.recordPing(ctx, ag, ev)
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
