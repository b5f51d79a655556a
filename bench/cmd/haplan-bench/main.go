// Command haplan-bench runs haplan (the CLI, bin/haplan) side by side with
// Ansible and a raw OpenSSH fan-out on the lab's fleet (haplab fleet up),
// measures apply's engine overhead on a full install of the lab's cluster,
// prints ratios, writes BENCHMARKS.md and keeps the raw numbers in
// bench/results.
//
//	haplan-bench [-sizes 10,100,1000] [-reps 3] [-parallelism 50] [-overhead=false]
package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/haplan/haplan/lab"
)

func main() {
	if err := benchMain(); err != nil {
		fmt.Fprintln(os.Stderr, "haplan-bench:", err)
		os.Exit(1)
	}
}

type config struct {
	sizes        []int
	reps         int
	parallelism  int
	ansibleMax   time.Duration // skip an Ansible run predicted to take longer
	root         string        // repository root
	work         string
	bin          string // bin/haplan, the CLI under test
	lab          *lab.Lab
	fleet        *lab.Fleet
	caPEM        []byte
	caDigest     string
	over         *overhead  // apply's engine overhead: the median full install
	overRuns     []overhead // every full install measured
	overReps     int
	outs         []outageRun // outage windows, haplan and the manual procedure
	outReps      int
	outScenarios []string // of outageScenarios
	regs         []regRun // registrations of the lab's agent hosts, haplan and the manual way
	regSizes     []int
	regReps      int
	// Recorded at the start of a run (recordVersions) or read back from
	// its results file.
	haplanVersion string
	fleetMem      int64
	fleetSSHD     int
	resultsFile   string    // set when re-rendering
	runDate       time.Time // of the re-rendered run
}

// sample is one timed run.
type sample struct {
	Tool     string  `json:"tool"`
	Scenario string  `json:"scenario"` // plan (no-op) or apply (CA distribution)
	N        int     `json:"n"`
	Wall     float64 `json:"wall_seconds"`
	// ClientCPU is user+sys of the tool and its children (ssh, python).
	ClientCPU float64 `json:"client_cpu_seconds"`
	// ServerCPU is the fleet containers' CPU (sshd, shells, python) during the run.
	ServerCPU float64 `json:"server_cpu_seconds"`
	// FleetMemPeakMiB is the fleet's peak cgroup RSS during the run.
	FleetMemPeakMiB float64 `json:"fleet_rss_peak_mib"`
	ClientMaxRSSMiB float64 `json:"client_max_rss_mib"`
	Converged       int     `json:"hosts_with_ca"`
	Note            string  `json:"note,omitempty"`
}

// The haplan CLI's breakdown runs: what a targeted plan spends before it
// probes the hosts.
const (
	toolCheck = "haplan check"                   // the preflight checks alone
	toolChain = "haplan plan --target ha.verify" // preflight + the cluster chain, no host
	target    = "cert.distribute[*]"
)

func benchMain() error {
	var cfg config
	sizes := flag.String("sizes", "10,100,1000", "fleet sizes")
	flag.IntVar(&cfg.reps, "reps", 3, "runs per tool, size and scenario (median reported); at 100+ hosts at most 2, Ansible 1, raw ssh at 1000 1")
	flag.IntVar(&cfg.parallelism, "parallelism", 50, "haplan --parallelism, Ansible forks and xargs -P")
	flag.DurationVar(&cfg.ansibleMax, "ansible-max", 5*time.Minute, "skip an Ansible run predicted (linearly from the last size) to exceed this")
	measureOver := flag.Bool("overhead", true, "reset the lab's cluster and time full installs (apply's engine overhead, ~60 s each)")
	flag.IntVar(&cfg.overReps, "overhead-reps", 3, "full installs for the engine overhead (the median by overhead share is reported)")
	rerender := flag.String("report", "", "only rewrite BENCHMARKS.md from this bench/results JSON")
	onlyOver := flag.Bool("only-overhead", false, "only measure the engine overhead and print it (no fleet, no BENCHMARKS.md)")
	measureOutage := flag.Bool("outage", true, "time the outage of an upgrade and of a resize, haplan against the manual procedure (~8 min)")
	onlyOutage := flag.Bool("only-outage", false, "only measure the outages and print them (no fleet, no BENCHMARKS.md)")
	flag.IntVar(&cfg.outReps, "outage-reps", 3, "runs per tool and scenario for the outage (the median is compared)")
	scenarios := flag.String("outage-scenarios", strings.Join(outageScenarios, ","), "the outages to time: upgrade, resize (3 to 5 nodes; needs the lab's two spares)")
	measureReg := flag.Bool("register", true, "time the registration of the lab's agent hosts, haplan against the documented manual way (the lab grows to the largest size for it and back)")
	onlyReg := flag.Bool("only-register", false, "only measure the registrations and print them (no fleet, no BENCHMARKS.md)")
	regSizes := flag.String("register-sizes", "10,50", "how many of the lab's agent hosts register")
	flag.IntVar(&cfg.regReps, "register-reps", 2, "registrations per tool and size (the lower median is compared)")
	flag.Parse()
	for _, s := range strings.Split(*regSizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return fmt.Errorf("bad -register-sizes %q", s)
		}
		cfg.regSizes = append(cfg.regSizes, n)
	}
	for _, sc := range strings.Split(*scenarios, ",") {
		if sc = strings.TrimSpace(sc); !slices.Contains(outageScenarios, sc) {
			return fmt.Errorf("bad -outage-scenarios %q: want some of %s", sc, strings.Join(outageScenarios, ", "))
		}
		cfg.outScenarios = append(cfg.outScenarios, sc)
	}
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return fmt.Errorf("bad size %q", s)
		}
		cfg.sizes = append(cfg.sizes, n)
	}
	root, err := lab.RepoRoot()
	if err != nil {
		return err
	}
	cfg.root = root
	cfg.bin = filepath.Join(root, "bin", "haplan")
	if cfg.lab, err = lab.Load(filepath.Join(root, "lab", "out")); err != nil {
		return err
	}
	if *onlyOver {
		cfg.bin = filepath.Join(root, "bin", "haplan")
		return cfg.overheads(context.Background())
	}
	if *onlyReg {
		if err := cfg.registrations(context.Background()); err != nil {
			return err
		}
		for _, n := range cfg.regSizes {
			fmt.Println(regRatio(cfg.regs, n))
		}
		return nil
	}
	if *onlyOutage {
		if cfg.work, err = os.MkdirTemp("", "haplan-bench-"); err != nil {
			return err
		}
		defer os.RemoveAll(cfg.work)
		if err := cfg.outages(context.Background()); err != nil {
			return err
		}
		for _, sc := range outageScenariosRun(cfg.outs) {
			fmt.Println(outageRatio(cfg.outs, sc))
		}
		return nil
	}
	if cfg.fleet, err = lab.LoadFleet(""); err != nil {
		return err
	}
	if need := slices.Max(cfg.sizes); len(cfg.fleet.Hosts) < need {
		return fmt.Errorf("the fleet has %d hosts, the bench needs %d: haplab fleet up --hosts %d", len(cfg.fleet.Hosts), need, need)
	}
	if *rerender != "" {
		return cfg.rerender(*rerender)
	}
	if _, err := os.Stat(cfg.bin); err != nil {
		return fmt.Errorf("%w (go build -o bin/haplan ./cmd/haplan)", err)
	}
	if cfg.work, err = os.MkdirTemp("", "haplan-bench-"); err != nil {
		return err
	}
	defer os.RemoveAll(cfg.work)
	ctx := context.Background()
	notes := map[string]string{}
	cfg.recordVersions(ctx)
	if *measureOutage {
		if err := cfg.outages(ctx); err != nil {
			return err
		}
	}
	if *measureReg {
		if err := cfg.registrations(ctx); err != nil {
			return err
		}
	}
	if err := cfg.prepare(ctx, *measureOver, notes); err != nil {
		return err
	}
	var samples []sample

	var lastAnsible = map[string]float64{} // scenario -> seconds per host at the last size
	for _, n := range cfg.sizes {
		manifest, inventory, err := cfg.files(n)
		if err != nil {
			return err
		}
		// Peers at 100+ hosts run once (Ansible takes minutes); the raw
		// ssh fan-out at 1000 once too.
		reps, ansibleReps, sshReps := cfg.reps, cfg.reps, cfg.reps
		if n >= 100 {
			reps, ansibleReps, sshReps = min(reps, 2), 1, min(reps, 2)
		}
		if n >= 1000 {
			sshReps = 1
		}
		ansibleOK := func(scn string) bool {
			per, ok := lastAnsible[scn]
			if !ok || time.Duration(per*float64(n)*float64(time.Second)) <= cfg.ansibleMax {
				return true
			}
			notes[fmt.Sprintf("ansible-%s-%d", scn, n)] = fmt.Sprintf("Ansible %s at N=%d skipped: predicted %.0f s from N=%d (-ansible-max %s)",
				scn, n, per*float64(n), cfg.sizes[max(0, slices.Index(cfg.sizes, n)-1)], cfg.ansibleMax)
			return false
		}
		// CA distribution, from hosts without the CA.
		for r := 0; r < reps; r++ {
			for _, tool := range []string{"haplan", "ansible", "ssh"} {
				if tool == "ansible" && (r >= ansibleReps || !ansibleOK("apply")) || tool == "ssh" && r >= sshReps {
					continue
				}
				if err := cfg.reset(ctx); err != nil {
					return err
				}
				s, err := cfg.run(ctx, tool, "apply", n, manifest, inventory)
				if err != nil {
					return err
				}
				if s.Converged != n {
					return fmt.Errorf("%s apply at N=%d: %d hosts have the CA afterwards, want %d", tool, n, s.Converged, n)
				}
				samples = append(samples, s)
				s.print()
				if tool == "ansible" {
					lastAnsible["apply"] = s.Wall / float64(n)
				}
			}
		}
		// No-op plan: every host has the CA (the last apply left it so).
		for r := 0; r < reps; r++ {
			for _, tool := range []string{"haplan", "ansible", "ssh"} {
				if tool == "ansible" && (r >= ansibleReps || !ansibleOK("plan")) || tool == "ssh" && r >= sshReps {
					continue
				}
				s, err := cfg.run(ctx, tool, "plan", n, manifest, inventory)
				if err != nil {
					return err
				}
				samples = append(samples, s)
				s.print()
				if tool == "ansible" {
					lastAnsible["plan"] = s.Wall / float64(n)
				}
			}
		}
		// The CLI's default parallelism (10), for the record, and what a
		// targeted plan spends before the hosts: preflight, then the
		// cluster chain that --target pulls in.
		par10 := fmt.Sprintf("haplan (parallelism %d)", 10)
		for _, x := range []struct {
			tool string
			args []string
		}{
			{par10, []string{"plan", "-f", manifest, "--target", target, "--detailed-exitcode", "--parallelism", "10"}},
			{toolCheck, []string{"check", "-f", manifest}},
			{toolChain, []string{"plan", "-f", manifest, "--target", "ha.verify", "--detailed-exitcode", "--parallelism", strconv.Itoa(cfg.parallelism)}},
		} {
			s, err := cfg.measure(ctx, x.tool, "plan", n, func() *exec.Cmd { return exec.CommandContext(ctx, cfg.bin, x.args...) })
			if err != nil {
				return err
			}
			samples = append(samples, s)
			s.print()
		}
		if n == slices.Max(cfg.sizes) {
			if err := cfg.profile(ctx, n, manifest); err != nil {
				return err
			}
		}
	}
	return cfg.report(samples, notes)
}

// profile runs haplan's apply and no-op plan at n hosts once more, untimed,
// with HAPLAN_CPUPROFILE and HAPLAN_MEMPROFILE, and keeps the profiles and
// their top functions in bench/results (profile-SCENARIO-N.*).
func (c *config) profile(ctx context.Context, n int, manifest string) error {
	for _, scn := range []string{"apply", "plan"} {
		if scn == "apply" {
			if err := c.reset(ctx); err != nil {
				return err
			}
		}
		base := filepath.Join(c.root, "bench", "results", fmt.Sprintf("profile-%s-%d", scn, n))
		args := []string{scn, "-f", manifest, "--target", target, "--parallelism", strconv.Itoa(c.parallelism)}
		if scn == "apply" {
			args = append(args, "--auto-approve")
		}
		cmd := exec.CommandContext(ctx, c.bin, args...)
		cmd.Env = append(os.Environ(), "HAPLAN_CPUPROFILE="+base+".cpu.pprof", "HAPLAN_MEMPROFILE="+base+".heap.pprof")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("profiled haplan %s: %v\n%s", scn, err, lastBytes(string(out), 2000))
		}
		var top bytes.Buffer
		for _, q := range [][]string{{"-top", "-nodecount=40", base + ".cpu.pprof"}, {"-top", "-cum", "-nodecount=40", base + ".cpu.pprof"},
			{"-top", "-sample_index=alloc_space", "-nodecount=25", base + ".heap.pprof"}} {
			out, err := command(ctx, nil, "go", append([]string{"tool", "pprof"}, q...)...)
			if err != nil {
				return fmt.Errorf("go tool pprof %v: %w", q, err)
			}
			fmt.Fprintf(&top, "$ go tool pprof %s\n%s\n", strings.Join(q, " "), out)
		}
		if err := os.WriteFile(base+".txt", top.Bytes(), 0o644); err != nil {
			return err
		}
		fmt.Printf("profiled haplan %s at N=%d: %s.{cpu.pprof,heap.pprof,txt}\n", scn, n, base)
	}
	return nil
}

// prepare measures apply's engine overhead on a full install (which resets
// the cluster), converges the lab's cluster, and reads its CA: the one
// every tool distributes.
func (c *config) prepare(ctx context.Context, measureOver bool, notes map[string]string) error {
	if measureOver {
		if err := c.overheads(ctx); err != nil {
			return err
		}
	}
	return c.converge(ctx, notes)
}

// overheads measures apply's engine overhead on -overhead-reps full
// installs and keeps the median.
func (c *config) overheads(ctx context.Context) error {
	for range max(c.overReps, 1) {
		o, err := c.measureOverhead(ctx)
		if err != nil {
			return fmt.Errorf("engine overhead: %w", err)
		}
		c.overRuns = append(c.overRuns, o)
		fmt.Printf("full install: %.1f s; waits (observed): bootstrap %.2f s, cluster formation %.2f s; overhead %.2f s = %.1f %% (poll lag %.2f s)\n",
			o.Wall, o.BootstrapWait, o.ClusterWait, o.Overhead, o.Percent, o.PollLag)
		fmt.Printf("  before the first step %.2f s, steps outside the waits %.2f s, no step running %.2f s, after the last step %.2f s; %s\n",
			o.BeforeFirstStep, o.StepsWork, o.Idle, o.AfterLastStep, stepTimes(o.Steps))
	}
	runs := slices.Clone(c.overRuns)
	slices.SortFunc(runs, func(a, b overhead) int { return cmp.Compare(a.Percent, b.Percent) })
	c.over = &runs[len(runs)/2]
	return nil
}

// converge applies the lab's cluster and reads the CA every tool distributes
// into the work directory.
func (c *config) converge(ctx context.Context, notes map[string]string) error {
	start := time.Now()
	if _, err := command(ctx, nil, c.bin, "apply", "--auto-approve", "-f", c.lab.Manifest); err != nil {
		return fmt.Errorf("converge the lab's cluster: %w", err)
	}
	notes["converge"] = fmt.Sprintf("Before the runs, `haplan apply --auto-approve -f lab/out/cluster.yaml` (the lab's cluster, converged) took %.1f s.", time.Since(start).Seconds())
	// The CA haplan distributes: the first node's that has it (as
	// cert.distribute reads it).
	var ca []byte
	var errs []error
	for _, h := range c.lab.ByRole(lab.RoleNode) {
		b, err := c.lab.Exec(ctx, h.Name, nil, "cat", "/var/lib/rancher/etc/ssl/ca.crt")
		if err == nil && len(b) > 0 {
			ca = b
			break
		}
		errs = append(errs, err)
	}
	if ca == nil {
		return fmt.Errorf("the cluster CA: %w", errors.Join(errs...))
	}
	c.caPEM = ca
	sum := sha256.Sum256(ca)
	c.caDigest = hex.EncodeToString(sum[:])
	return os.WriteFile(filepath.Join(c.work, "ca.crt"), c.caPEM, 0o644)
}

// files writes the haplan manifest and the Ansible inventory for fleet
// hosts 1..n. The manifest is the lab's (lab/out/cluster.yaml: its nodes,
// database, load balancer, secrets) with the fleet hosts as its hosts; it is
// written next to it so that its relative paths still resolve.
func (c *config) files(n int) (manifest, inventory string, err error) {
	base, err := os.ReadFile(c.lab.Manifest)
	if err != nil {
		return "", "", err
	}
	text, err := benchManifest(string(base), c.fleet.Hosts[:n], c.fleet.KnownHostsFile, c.fleet.IdentityFile)
	if err != nil {
		return "", "", err
	}
	manifest = filepath.Join(filepath.Dir(c.lab.Manifest), fmt.Sprintf("bench-cluster-%d.yaml", n))
	if err := os.WriteFile(manifest, []byte(text), 0o644); err != nil {
		return "", "", err
	}
	inv, err := command(context.Background(), nil, filepath.Join(c.root, "bench/ansible/inventory.sh"),
		filepath.Join(c.fleet.Dir, "fleet.json"), strconv.Itoa(n), "1")
	if err != nil {
		return "", "", err
	}
	inventory = filepath.Join(c.work, fmt.Sprintf("inventory-%d.ini", n))
	return manifest, inventory, os.WriteFile(inventory, inv, 0o644)
}

// benchManifest replaces the hosts of a manifest (the last section of the
// lab's cluster.yaml) by fleet hosts, each with the fleet's known_hosts.
func benchManifest(base string, hosts []lab.FleetHost, knownHosts, identity string) (string, error) {
	head, _, ok := strings.Cut(base, "\nhosts:")
	if !ok {
		return "", fmt.Errorf("no hosts section in the lab's manifest")
	}
	var b strings.Builder
	// The fleet hosts run sshd only: they get the CA, and are not
	// registered (register: false), which is what this benchmark measures.
	fmt.Fprintf(&b, "# haplan-bench: the lab's cluster with %d fleet hosts as its hosts.\n%s\nhostDefaults: {register: false}\nhosts:\n", len(hosts), head)
	for _, h := range hosts {
		fmt.Fprintf(&b, "  - {name: %s, address: %s, ssh: {knownHostsFile: %s, identityFile: %s}}\n", h.Name, h.IP, knownHosts, identity)
	}
	return b.String(), nil
}

func firstLines(s string, n int) string {
	ls := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(ls[:min(n, len(ls))], " / ")
}

// reset removes the CA (and its directory) from every fleet host.
func (c *config) reset(ctx context.Context) error {
	return c.fleet.FleetExec(ctx, fmt.Sprintf(`rm -rf %s/*/rancher/etc`, lab.FleetRoot))
}

// converged counts fleet hosts whose ca.crt is the CA with mode 0400.
func (c *config) converged(ctx context.Context) (int, error) {
	var mu sync.Mutex
	total := 0
	var errs []error
	var wg sync.WaitGroup
	for _, ct := range c.fleet.Containers {
		wg.Go(func() {
			out, err := command(ctx, nil, "docker", "exec", ct.Name, "sh", "-c", fmt.Sprintf(
				`n=0; for d in %s/*/rancher; do f="$d/etc/ssl/ca.crt"; [ -f "$f" ] && [ "$(stat -c %%a "$f")" = 400 ] && [ "$(sha256sum <"$f" | cut -d' ' -f1)" = %s ] && n=$((n+1)); done; echo $n`,
				lab.FleetRoot, c.caDigest))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			k, _ := strconv.Atoi(strings.TrimSpace(string(out)))
			total += k
		})
	}
	wg.Wait()
	return total, errors.Join(errs...)
}

// run times one tool doing one scenario on n hosts. haplan is the CLI as an
// operator runs it: preflight, the lock (apply), the targeted graph.
func (c *config) run(ctx context.Context, tool, scn string, n int, manifest, inventory string) (sample, error) {
	var mk func() *exec.Cmd
	switch tool {
	case "haplan":
		args := []string{scn, "-f", manifest, "--target", target, "--parallelism", strconv.Itoa(c.parallelism)}
		if scn == "plan" {
			args = append(args, "--detailed-exitcode") // exit 2 (an error here) if it is not a no-op
		} else {
			args = append(args, "--auto-approve")
		}
		mk = func() *exec.Cmd { return exec.CommandContext(ctx, c.bin, args...) }
	case "ansible":
		mk = func() *exec.Cmd {
			args := []string{"-i", inventory, "-f", strconv.Itoa(c.parallelism), "-e", "ca_file=" + filepath.Join(c.work, "ca.crt"),
				filepath.Join(c.root, "bench/ansible/ca.yml")}
			if scn == "plan" {
				args = append(args, "--check")
			}
			cmd := exec.CommandContext(ctx, "ansible-playbook", args...)
			cmd.Env = append(os.Environ(), "ANSIBLE_CONFIG="+filepath.Join(c.root, "bench/ansible/ansible.cfg"))
			return cmd
		}
	case "ssh":
		hosts := c.fleet.Hosts[:n]
		var addrs []string
		for _, h := range hosts {
			addrs = append(addrs, h.IP)
		}
		remote := `f=/var/lib/rancher/etc/ssl/ca.crt; stat -L -c "%a %s %F" $f; sha256sum $f`
		if scn == "apply" {
			remote = `set -e; mkdir -p /var/lib/rancher/etc/ssl; cd /var/lib/rancher/etc/ssl; t=$(mktemp .ca.crt.XXXXXX); cat >$t; chmod 0400 $t; mv -f $t ca.crt`
		}
		sshCmd := fmt.Sprintf("ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=%s -o IdentitiesOnly=yes -i %s root@{} '%s'",
			c.fleet.KnownHostsFile, c.fleet.IdentityFile, remote)
		if scn == "apply" {
			sshCmd += " <" + filepath.Join(c.work, "ca.crt")
		}
		script := fmt.Sprintf("xargs -P %d -I{} sh -c %s", c.parallelism, shQuote(sshCmd+" >/dev/null"))
		mk = func() *exec.Cmd {
			cmd := exec.CommandContext(ctx, "sh", "-c", script)
			cmd.Stdin = strings.NewReader(strings.Join(addrs, "\n") + "\n")
			return cmd
		}
	}
	return c.measure(ctx, tool, scn, n, mk)
}

func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// measure runs the command, sampling the fleet's CPU and memory from its
// cgroups, and checks the hosts afterwards.
func (c *config) measure(ctx context.Context, tool, scn string, n int, mk func() *exec.Cmd) (sample, error) {
	s := sample{Tool: tool, Scenario: scn, N: n}
	cpu0 := c.fleetCPU()
	stop := make(chan struct{})
	var peak float64
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			peak = max(peak, c.fleetRSS())
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	})
	cmd := mk()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	s.Wall = time.Since(start).Seconds()
	close(stop)
	wg.Wait()
	s.ServerCPU = c.fleetCPU() - cpu0
	s.FleetMemPeakMiB = peak
	if st := cmd.ProcessState; st != nil {
		s.ClientCPU = (st.UserTime() + st.SystemTime()).Seconds()
		if ru, ok := st.SysUsage().(*syscall.Rusage); ok {
			s.ClientMaxRSSMiB = float64(ru.Maxrss) / 1024
		}
	}
	if err != nil {
		return s, fmt.Errorf("%s %s N=%d: %v\n%s", tool, scn, n, err, lastBytes(errb.String()+out.String(), 3000))
	}
	if tool == "ansible" && scn == "plan" && regexp.MustCompile(`changed=[1-9]`).MatchString(out.String()) {
		s.Note = "ansible --check reported changes"
	}
	conv, err := c.converged(ctx)
	s.Converged = conv
	return s, err
}

func lastBytes(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

func (c *config) cgroupFiles(ctrl, file string) []string {
	var out []string
	for _, ct := range c.fleet.Containers {
		id, err := command(context.Background(), nil, "docker", "inspect", "-f", "{{.Id}}", ct.Name)
		if err != nil {
			continue
		}
		out = append(out, filepath.Join("/sys/fs/cgroup", ctrl, "docker", strings.TrimSpace(string(id)), file))
	}
	return out
}

var cgMu sync.Mutex
var cgCache = map[string][]string{}

func (c *config) cached(ctrl, file string) []string {
	cgMu.Lock()
	defer cgMu.Unlock()
	k := ctrl + "/" + file
	if _, ok := cgCache[k]; !ok {
		cgCache[k] = c.cgroupFiles(ctrl, file)
	}
	return cgCache[k]
}

// fleetCPU is the fleet containers' total CPU time in seconds (cgroup v1 cpuacct).
func (c *config) fleetCPU() float64 {
	var total float64
	for _, p := range c.cached("cpuacct", "cpuacct.usage") {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		v, _ := strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
		total += v / 1e9
	}
	return total
}

// fleetRSS is the fleet containers' total RSS in MiB (memory.stat total_rss).
func (c *config) fleetRSS() float64 {
	var total float64
	for _, p := range c.cached("memory", "memory.stat") {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "total_rss "); ok {
				f, _ := strconv.ParseFloat(v, 64)
				total += f / (1 << 20)
			}
		}
	}
	return total
}

func (s sample) print() {
	fmt.Printf("%-30s %-5s N=%-5d %7.2f s  client cpu %6.2f s  fleet cpu %6.2f s  fleet rss %6.0f MiB  client rss %5.0f MiB\n",
		s.Tool, s.Scenario, s.N, s.Wall, s.ClientCPU, s.ServerCPU, s.FleetMemPeakMiB, s.ClientMaxRSSMiB)
}

type cmdError struct {
	args   []string
	code   int
	stderr string
}

func (e *cmdError) Error() string {
	return fmt.Sprintf("%s: exit %d: %s", strings.Join(e.args, " "), e.code, lastBytes(e.stderr, 2000))
}

func command(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	if err := cmd.Run(); err != nil {
		code := -1
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		}
		return out.Bytes(), &cmdError{args: append([]string{name}, args...), code: code, stderr: errb.String()}
	}
	return out.Bytes(), nil
}
