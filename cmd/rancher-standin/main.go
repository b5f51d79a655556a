// Command rancher-standin is the lab's stand-in for rancher/server:v1.0.1
// and rancher/agent:v1.0.1. With no arguments it is the bootstrap server;
// with "ha" it is an HA node, with "agent" an HA node's agent; with a
// registration URL, "run", "state" or "inspect-host" it is the agent
// image's run.sh. See package lab/standin.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/haplan/haplan/lab/standin"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := standin.Run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
