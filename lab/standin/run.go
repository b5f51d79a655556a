package standin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"strings"
	"time"
)

// Run is the whole program: no arguments runs the bootstrap server, "ha"
// runs the HA node, "agent" the HA node's agent; the rancher/agent image's
// entrypoint (a registration URL, run, state, ...) is RunAgentImage. It
// returns the process exit code.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	lg := log.New(stdout, "", log.LstdFlags)
	hostname, err := os.Hostname()
	if err != nil {
		hostname = "localhost"
	}
	switch {
	case agentImageMode(args, getenv):
		return RunAgentImage(ctx, AgentOptions{Args: args, Environ: os.Environ(), Hostname: hostname, Stdout: stdout, Stderr: stderr})
	case len(args) == 0:
		err = runBootstrap(ctx, getenv, hostname, lg)
	case len(args) == 1 && args[0] == "ha":
		err = RunHA(ctx, HAOptions{
			EtcDir: "/var/lib/rancher/etc", Getenv: getenv, RouteFile: "/proc/net/route",
			APIAddr: ":18080", Hostname: hostname,
			Heartbeat: 5 * time.Second, HostPoll: 2 * time.Second, HostPolls: 31, Log: lg,
			Agent: NewDockerAgent("/var/run/docker.sock", lg, stdout),
		})
	case len(args) == 1 && args[0] == "agent":
		err = runAgent(ctx, lg)
	default:
		fmt.Fprintf(stderr, "usage: rancher-standin [ha|agent|URL|run|state|inspect-host]\n")
		return 2
	}
	if err == nil || (ctx.Err() != nil && errors.Is(err, context.Canceled)) {
		return 0
	}
	lg.Printf("FATAL: %v", err)
	return 1
}

func runBootstrap(ctx context.Context, getenv func(string) string, hostname string, lg *log.Logger) error {
	db, err := DBConfigFromEnv(getenv)
	if err != nil {
		return err
	}
	delay, err := durationEnv(getenv, "CATTLE_STANDIN_INIT_DELAY", 25*time.Second)
	if err != nil {
		return err
	}
	return RunBootstrap(ctx, BootstrapOptions{
		DB: db, InitDelay: delay, Addr: ":8080", Owner: hostname,
		Poll: 5 * time.Second, LockWait: 5 * time.Minute, Log: lg,
	})
}

// runAgent is the rancher/agent stand-in's entrypoint: it stays up as the
// node's connected agent until stopped.
func runAgent(ctx context.Context, lg *log.Logger) error {
	lg.Printf("Rancher agent (stand-in for %s) running", DefaultAgentImage)
	<-ctx.Done()
	return nil
}

// agentImageMode reports whether args are for the rancher/agent image's
// entrypoint (run.sh): a URL, register, upgrade, run, state, inspect-host,
// --, or nothing at all in the agent image (Dockerfile.agent sets
// STANDIN_IMAGE=rancher/agent; no CATTLE or RANCHER in its name, which
// run.sh's environment dump would list), which run.sh refuses.
func agentImageMode(args []string, getenv func(string) string) bool {
	if len(args) == 0 {
		return getenv("STANDIN_IMAGE") == "rancher/agent"
	}
	switch args[0] {
	case "register", "upgrade", "run", "state", "inspect-host", "--":
		return true
	}
	return strings.Contains(args[0], "http")
}
