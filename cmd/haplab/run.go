package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/haplan/haplan/lab"
)

const usage = `usage: haplab <command> [flags]

  up [--nodes 3] [--spares 2] [--hosts 3]
                               build and start the lab (idempotent), write lab/out;
                               spares are node machines outside the manifest
  down [--images]              remove the lab's containers, volumes, network and lab/out
  status                       one line per host
  reset                        remove the haplan cluster from the lab (containers, files,
                               registered agents, database), to watch a full install again
  kill HOST | start HOST       docker stop / start (start waits for sshd, and dockerd)
  partition HOST | heal HOST   disconnect from / reconnect to the lab network
  rekey HOST                   new sshd host key; known_hosts is NOT updated
  exec HOST -- CMD...          run a command on a host (docker exec)
  fleet up [--hosts 1000] [--per 250]   light SSH hosts f1..fN for benchmarks
                               (10.213.4.1 and up; lab/out/fleet/{fleet.json,known_hosts})
  fleet down | fleet mem       remove the fleet / print its memory and sshd count

Every command takes --dir DIR (default: lab/out of this repository).
`

// Run is the whole CLI; main only wires it to the process.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || slices.Contains([]string{"-h", "--help", "help"}, args[0]) {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet("haplab "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "lab output directory (default lab/out)")
	nodes := fs.Int("nodes", 3, "server nodes: 1, 3 or 5 (up)")
	hosts := fs.Int("hosts", 3, "agent hosts (up)")
	spares := fs.Int("spares", 2, "node machines outside the manifest, for growing and replacing (up)")
	images := fs.Bool("images", false, "also remove the cached host image (down)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	logf := func(format string, a ...any) {
		fmt.Fprintf(stdout, "%s %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, a...))
	}
	err := dispatch(ctx, cmd, fs.Args(), *dir, lab.Options{Nodes: *nodes, Spares: *spares, Hosts: *hosts, Dir: *dir, Log: logf}, *images, stdout, logf)
	var ce *lab.CommandError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "haplab: %v\n%s", err, usage)
		return 2
	case errors.As(err, &ce) && cmd == "exec":
		_, _ = io.WriteString(stderr, ce.Stderr)
		return ce.ExitCode
	default:
		fmt.Fprintf(stderr, "haplab %s: %v\n", cmd, err)
		return 1
	}
}

var errUsage = errors.New("usage")

func dispatch(ctx context.Context, cmd string, args []string, dir string, o lab.Options, images bool,
	stdout io.Writer, logf func(string, ...any)) error {
	switch cmd {
	case "up":
		l, err := lab.Up(ctx, o)
		if err != nil {
			return err
		}
		return summary(ctx, stdout, l)
	case "down":
		return lab.Down(ctx, lab.DownOptions{Dir: dir, Images: images, Log: logf})
	case "fleet":
		return fleet(ctx, args, dir, stdout, logf)
	}
	hostCmds := []string{"kill", "start", "partition", "heal", "rekey", "exec"}
	if cmd == "reset" {
		l, err := load(dir)
		if err != nil {
			return err
		}
		return l.ResetCluster(ctx, "cattle")
	}
	if cmd != "status" && !slices.Contains(hostCmds, cmd) {
		return fmt.Errorf("unknown command %q: %w", cmd, errUsage)
	}
	if cmd != "status" && len(args) < 1 {
		return fmt.Errorf("%s needs a host name: %w", cmd, errUsage)
	}
	l, err := load(dir)
	if err != nil {
		return err
	}
	if cmd == "status" {
		sts, err := l.Status(ctx)
		if err != nil {
			return err
		}
		return lab.WriteStatus(stdout, sts)
	}
	name := args[0]
	switch cmd {
	case "kill":
		return l.Kill(ctx, name)
	case "start":
		return l.Start(ctx, name)
	case "partition":
		return l.Partition(ctx, name)
	case "heal":
		return l.Heal(ctx, name)
	case "rekey":
		return l.RegenerateHostKey(ctx, name)
	case "exec":
		argv := args[1:]
		if len(argv) > 0 && argv[0] == "--" {
			argv = argv[1:]
		}
		if len(argv) == 0 {
			return fmt.Errorf("exec needs a command: %w", errUsage)
		}
		out, err := l.Exec(ctx, name, nil, argv...)
		_, _ = stdout.Write(out)
		return err
	}
	return fmt.Errorf("unknown command %q: %w", cmd, errUsage)
}

// fleet is `haplab fleet up|down|mem`; its flags follow the subcommand.
func fleet(ctx context.Context, args []string, dir string, stdout io.Writer, logf func(string, ...any)) error {
	if len(args) == 0 {
		return fmt.Errorf("fleet needs up, down or mem: %w", errUsage)
	}
	fs := flag.NewFlagSet("haplab fleet "+args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	hosts := fs.Int("hosts", 1000, "fleet hosts")
	per := fs.Int("per", lab.DefaultFleetPerContainer, "sshd per container")
	fs.StringVar(&dir, "dir", dir, "lab output directory")
	if err := fs.Parse(args[1:]); err != nil {
		return fmt.Errorf("fleet %s: %v: %w", args[0], err, errUsage)
	}
	switch args[0] {
	case "up":
		f, err := lab.FleetUp(ctx, lab.FleetOptions{Hosts: *hosts, PerContainer: *per, Dir: dir, Log: logf})
		if err != nil {
			return err
		}
		return fleetMem(ctx, stdout, f)
	case "down":
		return lab.FleetDown(ctx, dir, logf)
	case "mem":
		f, err := lab.LoadFleet(dir)
		if err != nil {
			return err
		}
		return fleetMem(ctx, stdout, f)
	}
	return fmt.Errorf("unknown fleet command %q: %w", args[0], errUsage)
}

func fleetMem(ctx context.Context, w io.Writer, f *lab.Fleet) error {
	b, n, err := f.Memory(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "fleet: %d hosts in %d containers, %d sshd processes, memory %.1f MiB (%.0f KiB per host)\n",
		len(f.Hosts), len(f.Containers), n, float64(b)/(1<<20), float64(b)/1024/float64(max(len(f.Hosts), 1)))
	return nil
}

func load(dir string) (*lab.Lab, error) {
	if dir == "" {
		d, err := lab.DefaultDir()
		if err != nil {
			return nil, err
		}
		dir = d
	}
	return lab.Load(dir)
}

func summary(ctx context.Context, w io.Writer, l *lab.Lab) error {
	sts, err := l.Status(ctx)
	if err != nil {
		return err
	}
	if err := lab.WriteStatus(w, sts); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nmanifest:    %s\nssh:         ssh -o StrictHostKeyChecking=yes -o UserKnownHostsFile=%s -i %s root@%s\n",
		l.Manifest, l.SSH.KnownHostsFile, l.SSH.IdentityFile, l.IP("rs1"))
	fmt.Fprintf(w, "db admin:    root@%s:%d, password in %s\nregistry:    %s (nodes: %s)\n",
		l.DB.Host, l.DB.Port, l.DB.AdminPasswordFile, l.Registry, l.RegistryMirror)
	return nil
}
