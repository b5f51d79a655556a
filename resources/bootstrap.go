package resources

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/haplan/haplan/dockerapi"
	"github.com/haplan/haplan/engine"
	"github.com/haplan/haplan/layout"
	"github.com/haplan/haplan/manifests"
	"github.com/haplan/haplan/plans"
	"github.com/haplan/haplan/transport"
)

// bootstrapRun is the one-off Rancher server that creates the schema and
// generates rancher-ha.sh. It is only needed until the script exists: on a
// cluster whose nodes hold the script, it is not planned at all.
type bootstrapRun struct {
	base
	node manifests.Node
}

var _ engine.Step = (*bootstrapRun)(nil)

type bootstrapState struct {
	ScriptGenerated bool   `json:"script_generated"`
	Container       string `json:"container"` // docker status, or "absent"
	Image           string `json:"image,omitempty"`
}

// where names the bootstrap server for people: it listens on the node's
// loopback, reached through the node's SSH connection.
func (s *bootstrapRun) where() string {
	return fmt.Sprintf("127.0.0.1:%d on %s (through ssh)", layout.BootstrapPort, s.node.Name)
}

// containerStatus returns docker's status and image of a container, or
// "absent".
func containerStatus(ctx context.Context, r transport.Runner, name string) (status, image string, err error) {
	c, err := dockerapi.New(r).Inspect(ctx, name)
	return c.Status, c.Image, err
}

func (s *bootstrapRun) Probe(ctx context.Context) (engine.State, error) {
	facts, err := s.env.scripts(ctx)
	if err != nil {
		return nil, err
	}
	if err := facts.settled(); err != nil {
		return nil, err
	}
	st := bootstrapState{ScriptGenerated: facts.generated()}
	if st.ScriptGenerated {
		st.Container = "absent"
		return st, nil
	}
	r, err := s.env.runner(ctx, nodeTarget(s.node))
	if err != nil {
		return nil, err
	}
	st.Container, st.Image, err = containerStatus(ctx, r, layout.Bootstrap)
	return st, err
}

func (s *bootstrapRun) Diff(cur engine.State) plans.Change {
	st := cur.(bootstrapState)
	img := s.env.c.Rancher.Image
	var c plans.Change
	switch {
	case st.ScriptGenerated:
		return s.change(plans.NoOp, "rancher-ha.sh already generated; no bootstrap server needed")
	case st.Container == "running" && st.Image == img:
		c = s.change(plans.Update, "bootstrap server running; wait until it answers")
	case st.Container == "absent":
		c = s.change(plans.Create, fmt.Sprintf("start a bootstrap server on %s to generate rancher-ha.sh", s.node.Name),
			plans.Detail{Name: "container", New: layout.Bootstrap}, plans.Detail{Name: "image", New: img})
	default:
		c = s.change(plans.Replace, fmt.Sprintf("bootstrap container is %s (%s); start it again", st.Container, st.Image),
			plans.Detail{Name: "image", Old: st.Image, New: img})
	}
	c.Temporary = true // bootstrap.stop removes it in the same run
	return c
}

// Apply starts the bootstrap server with its database settings in an env
// file (0600, removed right after docker run), so the password is in neither
// the node's process list nor haplan's output, then waits for it to answer.
func (s *bootstrapRun) Apply(ctx context.Context, _ plans.Change) error {
	r, err := s.env.runner(ctx, nodeTarget(s.node))
	if err != nil {
		return err
	}
	status, image, err := containerStatus(ctx, r, layout.Bootstrap)
	if err != nil {
		return err
	}
	if status != "running" || image != s.env.c.Rancher.Image {
		d := s.env.c.Database
		envFile := fmt.Sprintf("CATTLE_DB_CATTLE_MYSQL_HOST=%s\nCATTLE_DB_CATTLE_MYSQL_PORT=%d\nCATTLE_DB_CATTLE_MYSQL_NAME=%s\nCATTLE_DB_CATTLE_USERNAME=%s\nCATTLE_DB_CATTLE_PASSWORD=%s\n",
			d.Host, d.Port, d.Name, d.User, s.env.dbPW.Reveal())
		if err := transport.WriteFile(ctx, r, layout.BootstrapEnv, []byte(envFile), 0o600); err != nil {
			return err
		}
		// A container left over (exited, or another image) is replaced.
		rm := ""
		if status != "absent" {
			rm = fmt.Sprintf("docker rm -f %s >/dev/null 2>&1; ", layout.Bootstrap)
		}
		// Published on the node's loopback only: haplan reaches it
		// through the node's SSH connection (tunnel.go).
		line := rm + fmt.Sprintf("docker run -d --name %[1]s -p 127.0.0.1:%[2]d:8080 --env-file %[3]s -v /var/run/docker.sock:/var/run/docker.sock %[4]s; rc=$?; rm -f %[3]s; exit $rc",
			layout.Bootstrap, layout.BootstrapPort, layout.BootstrapEnv, transport.Quote(s.env.c.Rancher.Image))
		engine.Progress(ctx, "starting %s on %s", layout.Bootstrap, s.node.Name)
		if _, err := runWithin(ctx, r, line, true, s.env.c.Rancher.Timeouts.Pull); err != nil {
			// Killed at its limit or cut off, the command did not get
			// to remove the file with the password: remove it now.
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			if _, rerr := run(cctx, r, "rm -f "+layout.BootstrapEnv, true); rerr != nil {
				return fmt.Errorf("start bootstrap server: %w (and %s is left on %s: %v)", err, layout.BootstrapEnv, s.node.Name, rerr)
			}
			return fmt.Errorf("start bootstrap server: %w", err)
		}
	}
	return s.waitReady(ctx, r)
}

// waitReady polls /ping until the server answers "pong", watching that the
// container is still alive: a server that exits (bad grants, bad password)
// fails the step at once with its last log lines instead of timing out.
func (s *bootstrapRun) waitReady(ctx context.Context, r transport.Runner) error {
	timeout := s.env.c.Rancher.Timeouts.Bootstrap
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	api, err := s.env.apiOn(nodeTarget(s.node), layout.BootstrapPort)
	if err != nil {
		return err
	}
	start := time.Now()
	// Poll often (the wait is on the critical path), report and look at
	// the container less often.
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	var lastErr error
	reported, looked := time.Time{}, start
	for {
		pctx, pcancel := context.WithTimeout(wctx, 5*time.Second)
		lastErr = api.Ping(pctx)
		pcancel()
		if lastErr == nil {
			break
		}
		if time.Since(looked) >= containerCheckEvery {
			looked = time.Now()
			status, _, err := containerStatus(wctx, r, layout.Bootstrap)
			if err == nil && status != "running" {
				logs, _ := run(wctx, r, "docker logs --tail 20 "+layout.Bootstrap+" 2>&1", false)
				return fmt.Errorf("bootstrap server on %s is %s; last log lines:\n%s", s.node.Name, status, s.env.red.String(logs))
			}
		}
		if time.Since(reported) >= reportEvery {
			reported = time.Now()
			engine.Progress(ctx, "waiting for /ping of the bootstrap server at %s (%s of %s)", s.where(), time.Since(start).Round(time.Second), timeout)
		}
		select {
		case <-wctx.Done():
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("bootstrap server at %s did not answer /ping within %s (rancher.timeouts.bootstrap): %w", s.where(), timeout, lastErr)
		case <-tick.C:
		}
	}
	cfg, err := api.HAConfig(wctx)
	if err != nil {
		return fmt.Errorf("bootstrap server answers /ping but not /v1/haconfigs: %w", err)
	}
	if strings.EqualFold(cfg.DBHost, "localhost") {
		return fmt.Errorf("bootstrap server uses its embedded database (dbHost %q), not %s: check the CATTLE_DB_* settings", cfg.DBHost, s.env.c.Database.Host)
	}
	return nil
}

// bootstrapStop removes the bootstrap server once the script exists: it
// stops processing once HA is enabled and its ports conflict with the HA
// start on the same node.
type bootstrapStop struct {
	base
	node manifests.Node
}

var _ engine.Step = (*bootstrapStop)(nil)

type bootstrapStopState struct {
	Container       string `json:"container"`
	ScriptGenerated bool   `json:"script_generated"`
}

func (s *bootstrapStop) Probe(ctx context.Context) (engine.State, error) {
	facts, err := s.env.scripts(ctx)
	if err != nil {
		return nil, err
	}
	if err := facts.settled(); err != nil {
		return nil, err
	}
	r, err := s.env.runner(ctx, nodeTarget(s.node))
	if err != nil {
		return nil, err
	}
	status, _, err := containerStatus(ctx, r, layout.Bootstrap)
	return bootstrapStopState{Container: status, ScriptGenerated: facts.generated()}, err
}

func (s *bootstrapStop) Diff(cur engine.State) plans.Change {
	st := cur.(bootstrapStopState)
	var c plans.Change
	switch {
	case st.Container != "absent":
		c = s.change(plans.Delete, fmt.Sprintf("bootstrap server (%s) is no longer needed once the script exists", st.Container))
	case !st.ScriptGenerated:
		c = s.change(plans.Delete, "the bootstrap server started by this run is removed once the script is generated")
	default:
		return s.change(plans.NoOp, "no bootstrap server")
	}
	// Before the script exists, the bootstrap server is part of the
	// install, not something that was there to destroy.
	c.Temporary = !st.ScriptGenerated
	return c
}

func (s *bootstrapStop) Apply(ctx context.Context, _ plans.Change) error {
	r, err := s.env.runner(ctx, nodeTarget(s.node))
	if err != nil {
		return err
	}
	status, _, err := containerStatus(ctx, r, layout.Bootstrap)
	if err != nil {
		return err
	}
	line := "rm -f " + layout.BootstrapEnv
	if status != "absent" {
		// docker rm -f fails for a container that went away meanwhile: that
		// is success too.
		line = fmt.Sprintf("docker rm -f %[1]s >/dev/null || ! docker inspect %[1]s >/dev/null 2>&1; rc=$?; %[2]s; exit $rc", layout.Bootstrap, line)
	}
	_, err = run(ctx, r, line, true)
	return err
}
