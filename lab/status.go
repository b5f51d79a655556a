package lab

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"golang.org/x/sync/errgroup"
)

// HostStatus is what Status observed about one host. SSH and Dockerd are
// "yes", "no" or "-" (not applicable).
type HostStatus struct {
	Host
	State     string // docker state: running, exited, missing...
	SSH       string
	Dockerd   string
	Connected bool
}

// Status probes every host of the lab: container state, network
// attachment, sshd reachable from this machine, dockerd answering.
func (l *Lab) Status(ctx context.Context) ([]HostStatus, error) {
	cs, err := inspectLab(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]HostStatus, len(l.Hosts))
	var g errgroup.Group
	g.SetLimit(dockerParallelism)
	for i, h := range l.Hosts {
		c, ok := cs[h.Container]
		st := HostStatus{Host: h, State: "missing", SSH: "-", Dockerd: "-"}
		if ok {
			st.State = c.State.Status
			st.Connected = c.connected()
		}
		out[i] = st
		g.Go(func() error {
			if h.Role.HasSSH() {
				out[i].SSH = yesNo(sshBanner(ctx, h.IP) == nil)
			}
			if h.Role.HasDockerd() {
				out[i].Dockerd = yesNo(ok && c.State.Running && dockerdUp(ctx, h) == nil)
			}
			return nil
		})
	}
	_ = g.Wait()
	return out, ctx.Err()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// WriteStatus prints one line per host.
func WriteStatus(w io.Writer, sts []HostStatus) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tROLE\tIP\tSTATE\tSSHD\tDOCKERD\tNETWORK")
	for _, s := range sts {
		net := "connected"
		if !s.Connected {
			net = "partitioned"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, s.Role, s.IP, s.State, s.SSH, s.Dockerd, net)
	}
	return tw.Flush()
}
