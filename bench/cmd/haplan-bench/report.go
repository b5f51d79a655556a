package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/haplan/haplan/lab"
)

// median (lower) of the wall times of tool/scenario/n; ok is false without samples.
func median(ss []sample, tool, scn string, n int) (sample, bool) {
	return lowerMedian(ss, func(s sample) bool { return s.Tool == tool && s.Scenario == scn && s.N == n }, func(s sample) float64 { return s.Wall })
}

// lowerMedian is the lower median by key of the xs that keep selects (of
// two, the better): false when keep selects none.
func lowerMedian[T any](xs []T, keep func(T) bool, key func(T) float64) (T, bool) {
	var sel []T
	for _, x := range xs {
		if keep(x) {
			sel = append(sel, x)
		}
	}
	if len(sel) == 0 {
		var zero T
		return zero, false
	}
	slices.SortStableFunc(sel, func(a, b T) int { return cmp.Compare(key(a), key(b)) })
	return sel[(len(sel)-1)/2], true
}

func (c *config) date() time.Time {
	if !c.runDate.IsZero() {
		return c.runDate
	}
	return time.Now().UTC()
}

// rerender writes BENCHMARKS.md again from a results file (new notes or
// table layout without re-running); the JSON is not rewritten.
func (c *config) rerender(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var r struct {
		Samples     []sample          `json:"samples"`
		Notes       map[string]string `json:"notes"`
		Parallelism int               `json:"parallelism"`
		Date        time.Time         `json:"date"`
		Overhead    *overhead         `json:"overhead"`
		Outages     []outageRun       `json:"outages"`
		Regs        []regRun          `json:"registrations"`
		Runs        []overhead        `json:"overhead_runs"`
		Haplan      string            `json:"haplan_version"`
		FleetMem    int64             `json:"fleet_idle_bytes"`
		FleetSSHD   int               `json:"fleet_sshd"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return err
	}
	c.parallelism = r.Parallelism
	c.sizes = nil
	for _, s := range r.Samples {
		if !slices.Contains(c.sizes, s.N) {
			c.sizes = append(c.sizes, s.N)
		}
	}
	c.resultsFile = path
	c.runDate = r.Date
	c.over = r.Overhead
	c.outs = r.Outages
	c.regs = r.Regs
	c.overRuns = r.Runs
	c.haplanVersion, c.fleetMem, c.fleetSSHD = r.Haplan, r.FleetMem, r.FleetSSHD
	return c.report(r.Samples, r.Notes)
}

func (c *config) report(ss []sample, notes map[string]string) error {
	ctx := context.Background()
	ver := func(name string, args ...string) string {
		out, err := command(ctx, nil, name, args...)
		if err != nil {
			if ce, ok := err.(*cmdError); ok && ce.stderr != "" {
				return strings.TrimSpace(firstLines(ce.stderr, 1))
			}
			return "unknown"
		}
		s := strings.TrimSpace(firstLines(string(out), 1))
		return s
	}
	sshv := "unknown"
	if _, err := command(ctx, nil, "ssh", "-V"); err == nil {
		sshv = "?"
	}
	if out, err := command(ctx, nil, "sh", "-c", "ssh -V 2>&1"); err == nil {
		sshv = strings.TrimSpace(string(out))
	}
	sshdv := ver("sh", "-c", "docker exec "+c.fleet.Containers[0].Name+" sh -c 'sshd -V 2>&1 | head -1' || true")
	mem := "unknown"
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		mem = strings.Join(strings.Fields(firstLines(string(b), 1))[1:], " ")
	}
	// What was measured, recorded when the run started: a re-rendered
	// report must not describe the tree or the fleet as they are now.
	commit, fleetMem, sshdN := c.haplanVersion, c.fleetMem, c.fleetSSHD
	if commit == "" {
		commit = "unknown (not recorded by this run)"
	}

	var b strings.Builder
	fmt.Fprintf(&b, "# Benchmarks\n\nWritten by `make bench` (bench/cmd/haplan-bench); raw numbers in `bench/results/*.json`.\n\n")
	fmt.Fprintf(&b, "| | |\n|---|---|\n")
	fmt.Fprintf(&b, "| date | %s |\n| machine | %d cores (nproc), %s memory, %s/%s |\n", c.date().Format(time.RFC3339), runtime.NumCPU(), mem, runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(&b, "| haplan | %s, %s |\n| ansible | %s |\n| openssh client | %s |\n| openssh server (fleet) | %s |\n",
		commit, runtime.Version(), ver("ansible-playbook", "--version"), sshv, sshdv)
	fmt.Fprintf(&b, "| fleet | %d real sshd (one per address, own host key, own /var/lib/rancher) in %d containers; idle: %.0f MiB cgroup memory, %.0f KiB per host |\n",
		sshdN, len(c.fleet.Containers), float64(fleetMem)/(1<<20), float64(fleetMem)/1024/float64(max(sshdN, 1)))
	fmt.Fprintf(&b, "| parallelism | %d for all three (haplan --parallelism, Ansible forks, xargs -P) |\n\n", c.parallelism)
	fmt.Fprintf(&b, "Medians of wall time (s). *plan* = no-op plan / `--check` / stat+sha256 over ssh, every host already has the CA. "+
		"*apply* = CA distribution to hosts without it (reset between runs), checked afterwards on every host (digest and mode 0400).\n\n")
	fmt.Fprintf(&b, "| scenario | N | haplan | ansible | raw ssh | ansible / haplan | raw ssh / haplan | haplan client CPU s | fleet (sshd) CPU s | fleet RSS peak MiB |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, scn := range []string{"plan", "apply"} {
		for _, n := range c.sizes {
			h, hok := median(ss, "haplan", scn, n)
			a, aok := median(ss, "ansible", scn, n)
			r, rok := median(ss, "ssh", scn, n)
			cell := func(s sample, ok bool) string {
				if !ok {
					return "—"
				}
				return fmt.Sprintf("%.2f", s.Wall)
			}
			ratio := func(s sample, ok bool) string {
				if !ok || !hok {
					return "—"
				}
				return fmt.Sprintf("%.1f×", s.Wall/h.Wall)
			}
			fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %s | %.2f | %.2f | %.0f |\n", scn, n, cell(h, hok), cell(a, aok), cell(r, rok),
				ratio(a, aok), ratio(r, rok), h.ClientCPU, h.ServerCPU, h.FleetMemPeakMiB)
		}
	}
	fmt.Fprintf(&b, "\nPer tool (medians): wall s / client CPU s / fleet CPU s / client max RSS MiB\n\n| scenario | N | haplan | haplan (parallelism 10) | ansible | raw ssh |\n|---|---|---|---|---|---|\n")
	for _, scn := range []string{"plan", "apply"} {
		for _, n := range c.sizes {
			fmt.Fprintf(&b, "| %s | %d |", scn, n)
			for _, t := range []string{"haplan", "haplan (parallelism 10)", "ansible", "ssh"} {
				if s, ok := median(ss, t, scn, n); ok {
					fmt.Fprintf(&b, " %.2f / %.2f / %.2f / %.0f |", s.Wall, s.ClientCPU, s.ServerCPU, s.ClientMaxRSSMiB)
				} else {
					b.WriteString(" — |")
				}
			}
			b.WriteString("\n")
		}
	}
	b.WriteString("\nWhat the CLI's targeted plan spends before the hosts (medians, wall s / client CPU s): `haplan check` is the preflight alone; " +
		"`plan --target ha.verify` is preflight + the cluster chain that `--target 'cert.distribute[*]'` pulls in, without hosts.\n\n" +
		"| N | haplan check | plan --target ha.verify | plan --target 'cert.distribute[*]' | of which the hosts |\n|---|---|---|---|---|\n")
	for _, n := range c.sizes {
		ck, ok1 := median(ss, toolCheck, "plan", n)
		ch, ok2 := median(ss, toolChain, "plan", n)
		h, ok3 := median(ss, "haplan", "plan", n)
		if !ok1 || !ok2 || !ok3 {
			continue
		}
		fmt.Fprintf(&b, "| %d | %.2f / %.2f | %.2f / %.2f | %.2f / %.2f | %.2f / %.2f |\n", n, ck.Wall, ck.ClientCPU, ch.Wall, ch.ClientCPU,
			h.Wall, h.ClientCPU, h.Wall-ch.Wall, h.ClientCPU-ch.ClientCPU)
	}
	if len(c.outs) > 0 {
		fmt.Fprintf(&b, "\nOutage windows (issue 12): the lab's cluster (3 nodes, %s), each run from a fresh install. "+
			"The window runs from the first node stopped to https://<lb>/ping answering again, verified against the cluster CA (a prober every 100 ms). "+
			"*upgrade*: to %s (on no node before); *manual* is the documented procedure scripted: mysqldump with Rancher's options, then over OpenSSH on each node in turn the rancher containers removed, "+
			"then on each node the same rancher-ha.sh with the new tag (which pulls it). "+
			"*resize*: 3 to 5 nodes (the lab's spares); *manual* prepares by hand before the outage (grants, rancher/server pulled on the new nodes, mysqldump, "+
			"createscript through the LB, the script copied to every node, then the LB pool), then removes the rancher containers on each old node in turn and runs the new script on each of the five "+
			"(the new nodes pull rancher/agent inside the window, which haplan pre-pulls).\n\n", lab.RancherImage, lab.NextRancherImage)
		fmt.Fprintf(&b, "| scenario | tool | outage window s | first node stopped after s | whole run s |\n|---|---|---|---|---|\n")
		for _, o := range c.outs {
			fmt.Fprintf(&b, "| %s | %s | %.1f | %.1f | %.1f |\n", o.Scenario, o.Tool, o.Window, o.Stopped, o.Wall)
		}
		for _, sc := range outageScenariosRun(c.outs) {
			fmt.Fprintf(&b, "\n%s\n", outageRatio(c.outs, sc))
		}
	}
	if len(c.regs) > 0 {
		fmt.Fprintf(&b, "\nRegistration of the lab's agent hosts (issue 11): each run from the lab's cluster installed afresh with no host, until every host is active "+
			"with its agent connected in Default as the API tells it through the load balancer. haplan: `haplan apply --parallelism P` of the manifest with the N hosts (CA, token, registration). "+
			"*manual* is the documented way scripted: a registration token made and polled until active, then on every host at once over OpenSSH (P at a time) the CA copied (mode 400) "+
			"and the token's command run with CATTLE_AGENT_IP, then the API polled every second.\n\n")
		fmt.Fprintf(&b, "| hosts | tool | wall s |\n|---|---|---|\n")
		for _, r := range c.regs {
			fmt.Fprintf(&b, "| %d | %s | %.1f |\n", r.N, r.Tool, r.Wall)
		}
		for _, n := range regSizesRun(c.regs) {
			fmt.Fprintf(&b, "\n%s\n", regRatio(c.regs, n))
		}
	}
	if o := c.over; o != nil {
		fmt.Fprintf(&b, "\nApply's engine overhead (issue 6): `haplan apply --auto-approve --json -f lab/out/cluster.yaml` on the lab's cluster after a reset "+
			"(3 nodes, 3 hosts; containers, image, /var/lib/rancher, CA, HAProxy config, database and users removed). "+
			"Waits are what the servers take, timed from outside by the bench's observer (polling every 50 ms): the bootstrap server, from bootstrap.run's docker run "+
			"(its first \"waiting for /ping\" event) to the first \"pong\"; the cluster, from the last ha.start to a node's API counting every node active "+
			"and the load balancer answering /ping. Overhead = wall − waits, as a share of the wall time (the critical path); "+
			"haplan noticing a wait's end late (poll lag) is overhead.\n\n")
		fmt.Fprintf(&b, "| wall s | bootstrap wait s | cluster formation wait s | overhead s | overhead %% | before the first step s | steps outside the waits s | of which poll lag s | no step running s | after the last step s |\n|---|---|---|---|---|---|---|---|---|---|\n")
		fmt.Fprintf(&b, "| %.1f | %.1f | %.1f | %.1f | **%.1f %%** | %.2f | %.2f | %.2f | %.2f | %.2f |\n", o.Wall, o.BootstrapWait, o.ClusterWait, o.Overhead, o.Percent,
			o.BeforeFirstStep, o.StepsWork, o.PollLag, o.Idle, o.AfterLastStep)
		if len(c.overRuns) > 1 {
			fmt.Fprintf(&b, "\nThe median of %d full installs by overhead share; all of them (wall s / overhead s / %%): ", len(c.overRuns))
			for i, r := range c.overRuns {
				if i > 0 {
					b.WriteString(", ")
				}
				fmt.Fprintf(&b, "%.1f / %.2f / %.1f %%", r.Wall, r.Overhead, r.Percent)
			}
			b.WriteString(".\n")
		}
		b.WriteString("\nApply time per step (s): " + stepTimes(o.Steps))
		b.WriteString("\n")
	}
	b.WriteString("\n## Notes\n\n")
	b.WriteString("- The haplan side is the CLI (`bin/haplan`) as an operator runs it, on a manifest that is the lab's converged cluster " +
		"(lab/out/cluster.yaml: rs1..rs3, db, lb) with the N fleet hosts as its `hosts` (lab/out/bench-cluster-N.yaml): " +
		"`haplan plan --target 'cert.distribute[*]' --detailed-exitcode` (exit 0: no-op) and " +
		"`haplan apply --auto-approve --target 'cert.distribute[*]'`, preflight checks and the MySQL apply lock included.\n")
	keys := make([]string, 0, len(notes))
	for k := range notes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		b.WriteString("- " + notes[k] + "\n")
	}
	b.WriteString("- Client CPU is the tool and its children (ssh, python); fleet CPU is the fleet containers' cgroups (sshd, shells, python on the targets).\n")

	// The analysis is written by people, in bench/analysis.md.
	if an, err := os.ReadFile(filepath.Join(c.root, "bench", "analysis.md")); err == nil {
		b.WriteString("\n")
		b.Write(an)
	}
	if err := os.WriteFile(filepath.Join(c.root, "BENCHMARKS.md"), []byte(b.String()), 0o644); err != nil {
		return err
	}
	if c.resultsFile != "" {
		fmt.Print("\n" + b.String())
		return nil
	}
	js, err := json.MarshalIndent(map[string]any{"date": time.Now().UTC(), "samples": ss, "notes": notes, "parallelism": c.parallelism, "overhead": c.over, "overhead_runs": c.overRuns, "outages": c.outs, "registrations": c.regs,
		"haplan_version": c.haplanVersion, "fleet_idle_bytes": c.fleetMem, "fleet_sshd": c.fleetSSHD}, "", "  ")
	if err != nil {
		return err
	}
	name := filepath.Join(c.root, "bench", "results", "bench-"+time.Now().UTC().Format("20060102T150405Z")+".json")
	if err := os.WriteFile(name, append(js, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Print("\n" + b.String())
	fmt.Printf("\nwrote BENCHMARKS.md and %s\n", name)
	return nil
}

// stepTimes lists apply time per step, longest first.
func stepTimes(t map[string]float64) string {
	steps := make([]string, 0, len(t))
	for a := range t {
		steps = append(steps, a)
	}
	slices.SortFunc(steps, func(x, y string) int { return cmp.Compare(t[y], t[x]) })
	var b strings.Builder
	for i, a := range steps {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %.2f", a, t[a])
	}
	return b.String()
}

// recordVersions notes, before the runs, the haplan commit under test and
// the fleet's idle memory.
func (c *config) recordVersions(ctx context.Context) {
	commit := "unknown"
	if out, err := command(ctx, nil, "git", "-C", c.root, "rev-parse", "--short", "HEAD"); err == nil {
		commit = strings.TrimSpace(string(out))
	}
	if out, _ := command(ctx, nil, "git", "-C", c.root, "status", "--porcelain", "--untracked-files=no"); len(out) > 0 {
		commit += " + uncommitted changes"
	}
	c.haplanVersion = commit
	c.fleetMem, c.fleetSSHD, _ = c.fleet.Memory(ctx)
}
