// Command haplan-bench runs haplan side by side with Ansible and a raw
// OpenSSH fan-out on the lab's fleet (haplab fleet up), prints ratios,
// writes BENCHMARKS.md and keeps the raw numbers in bench/results.
//
//	haplan-bench [-sizes 10,100,1000] [-reps 3] [-parallelism 50]
//	haplan-bench haplan plan|apply -f MANIFEST   (the haplan side, run as a child)
package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"math/big"
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
	if len(os.Args) > 1 && os.Args[1] == "haplan" {
		if err := runHaplan(os.Args[2:], os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "haplan-bench haplan:", err)
			os.Exit(1)
		}
		return
	}
	if err := benchMain(); err != nil {
		fmt.Fprintln(os.Stderr, "haplan-bench:", err)
		os.Exit(1)
	}
}

type config struct {
	sizes       []int
	reps        int
	parallelism int
	ansibleMax  time.Duration // skip an Ansible run predicted to take longer
	root        string        // repository root
	work        string
	self        string
	fleet       *lab.Fleet
	caPEM       []byte
	caDigest    string
	profile     bool
	resultsFile string    // set when re-rendering
	runDate     time.Time // of the re-rendered run
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
	FleetMemPeakMiB float64       `json:"fleet_rss_peak_mib"`
	ClientMaxRSSMiB float64       `json:"client_max_rss_mib"`
	Converged       int           `json:"hosts_with_ca"`
	Haplan          *runnerResult `json:"haplan,omitempty"`
	Note            string        `json:"note,omitempty"`
}

func benchMain() error {
	var cfg config
	sizes := flag.String("sizes", "10,100,1000", "fleet sizes")
	flag.IntVar(&cfg.reps, "reps", 3, "runs per tool, size and scenario (median reported); at 100+ hosts at most 2, Ansible 1, raw ssh at 1000 1")
	flag.IntVar(&cfg.parallelism, "parallelism", 50, "haplan --parallelism, Ansible forks and xargs -P")
	flag.DurationVar(&cfg.ansibleMax, "ansible-max", 5*time.Minute, "skip an Ansible run predicted (linearly from the last size) to exceed this")
	flag.BoolVar(&cfg.profile, "profile", true, "profile haplan (CPU, heap) at the largest size")
	rerender := flag.String("report", "", "only rewrite BENCHMARKS.md from this bench/results JSON")
	flag.Parse()
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
	if cfg.self, err = os.Executable(); err != nil {
		return err
	}
	if cfg.fleet, err = lab.LoadFleet(""); err != nil {
		return err
	}
	if need := slices.Max(cfg.sizes) + 1; len(cfg.fleet.Hosts) < need {
		return fmt.Errorf("the fleet has %d hosts, the bench needs %d (one holds the CA): haplab fleet up --hosts %d", len(cfg.fleet.Hosts), need, need)
	}
	if *rerender != "" {
		return cfg.rerender(*rerender)
	}
	if cfg.work, err = os.MkdirTemp("", "haplan-bench-"); err != nil {
		return err
	}
	defer os.RemoveAll(cfg.work)
	if err := cfg.prepare(); err != nil {
		return err
	}
	ctx := context.Background()
	var samples []sample
	notes := map[string]string{}
	graphNote, err := cfg.targetedGraph(ctx)
	if err != nil {
		return err
	}
	notes["graph"] = graphNote
	fmt.Println(graphNote)

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
				s, err := cfg.run(ctx, tool, "apply", n, manifest, inventory, "")
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
				s, err := cfg.run(ctx, tool, "plan", n, manifest, inventory, "")
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
		// The default parallelism of the CLI (10), for the record.
		s, err := cfg.runHaplanPar(ctx, "plan", n, manifest, 10)
		if err != nil {
			return err
		}
		samples = append(samples, s)
		s.print()
		if cfg.profile && n == slices.Max(cfg.sizes) {
			for _, scn := range []string{"plan", "apply"} {
				if scn == "apply" {
					if err := cfg.reset(ctx); err != nil {
						return err
					}
				}
				prefix := filepath.Join(cfg.root, "bench", "results", fmt.Sprintf("profile-%s-%d", scn, n))
				s, err := cfg.run(ctx, "haplan", scn, n, manifest, inventory, prefix)
				if err != nil {
					return err
				}
				s.Tool = "haplan (profiled)"
				samples = append(samples, s)
				s.print()
				if err := pprofTop(prefix); err != nil {
					return err
				}
			}
		}
	}
	return cfg.report(samples, notes)
}

// prepare makes the CA, the secrets the manifest refers to, and puts the CA
// on the first fleet host (the bench manifest's only node).
func (c *config) prepare() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "haplan bench CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	c.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	sum := sha256.Sum256(c.caPEM)
	c.caDigest = hex.EncodeToString(sum[:])
	if err := os.WriteFile(filepath.Join(c.work, "ca.crt"), c.caPEM, 0o644); err != nil {
		return err
	}
	for _, s := range []string{"db-password", "db-admin-password"} {
		if err := os.WriteFile(filepath.Join(c.work, s), []byte("bench-unused\n"), 0o600); err != nil {
			return err
		}
	}
	node := c.fleet.Hosts[0]
	_, err = command(context.Background(), c.caPEM, "docker", "exec", "-i", node.Container, "sh", "-c",
		fmt.Sprintf("set -e; mkdir -p %[1]s/etc/ssl; cat >%[1]s/etc/ssl/ca.crt; chmod 0400 %[1]s/etc/ssl/ca.crt", node.RancherDir()))
	return err
}

// files writes the haplan manifest and the Ansible inventory for n hosts:
// fleet hosts 2..n+1; host 1 is the node that holds the CA.
func (c *config) files(n int) (manifest, inventory string, err error) {
	node := c.fleet.Hosts[0]
	var b strings.Builder
	fmt.Fprintf(&b, `# haplan-bench: %d fleet hosts; the only node is fleet host %s, which holds the CA.
# database and loadBalancer are required fields; nothing in the bench uses them
# (%[6]s is a fleet container's own address: nothing listens there).
name: bench
rancher:
  hostRegistrationUrl: https://%[3]s
ssh:
  user: root
  identityFile: %[4]s
  knownHostsFile: %[5]s
  hostKeyPolicy: strict
database:
  host: %[6]s
  password: {file: db-password}
  admin:
    user: root
    password: {file: db-admin-password}
loadBalancer:
  address: %[6]s
nodes:
  - {name: ca, address: %[3]s}
hosts:
`, n, node.Name, node.IP, c.fleet.IdentityFile, c.fleet.KnownHostsFile, c.fleet.Containers[0].IP)
	for _, h := range c.fleet.Hosts[1 : n+1] {
		fmt.Fprintf(&b, "  - {name: %s, address: %s}\n", h.Name, h.IP)
	}
	manifest = filepath.Join(c.work, fmt.Sprintf("cluster-%d.yaml", n))
	if err := os.WriteFile(manifest, []byte(b.String()), 0o644); err != nil {
		return "", "", err
	}
	inv, err := command(context.Background(), nil, filepath.Join(c.root, "bench/ansible/inventory.sh"),
		filepath.Join(c.fleet.Dir, "fleet.json"), strconv.Itoa(n), "2")
	if err != nil {
		return "", "", err
	}
	inventory = filepath.Join(c.work, fmt.Sprintf("inventory-%d.ini", n))
	return manifest, inventory, os.WriteFile(inventory, inv, 0o644)
}

// targetedGraph records what `haplan graph --target 'cert.distribute[*]'`
// and `haplan plan --target ...` do with the bench manifest.
func (c *config) targetedGraph(ctx context.Context) (string, error) {
	manifest, _, err := c.files(3)
	if err != nil {
		return "", err
	}
	bin := filepath.Join(c.root, "bin", "haplan")
	out, err := command(ctx, nil, bin, "graph", "-f", manifest, "--target", "cert.distribute[*]")
	if err != nil {
		return "", fmt.Errorf("haplan graph: %w", err)
	}
	var steps []string
	for _, l := range strings.Split(string(out), "\n") {
		if i := strings.Index(l, "\""); i >= 0 && !strings.Contains(l, "->") {
			if j := strings.Index(l[i+1:], "\""); j > 0 {
				steps = append(steps, l[i+1:i+1+j])
			}
		}
	}
	pctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	start := time.Now()
	pout, perr := command(pctx, nil, bin, "plan", "-f", manifest, "--target", "cert.distribute[*]")
	first := ""
	var ce *cmdError
	if errors.As(perr, &ce) {
		first = ce.stderr
	}
	for _, l := range strings.Split(first+string(pout), "\n") {
		if strings.HasPrefix(l, "Error") || strings.Contains(l, "preflight") {
			first = strings.TrimSpace(l)
			break
		}
	}
	return fmt.Sprintf("haplan graph --target 'cert.distribute[*]' on a 1-node, 3-host manifest keeps %d steps: %s. "+
		"haplan plan --target 'cert.distribute[*]' took %.1f s and ended with %v: %s",
		len(steps), strings.Join(steps, ", "), time.Since(start).Seconds(), exitOf(perr), first), nil
}

func firstLines(s string, n int) string {
	ls := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(ls[:min(n, len(ls))], " / ")
}

func exitOf(err error) string {
	var ce *cmdError
	if errors.As(err, &ce) {
		return "exit " + strconv.Itoa(ce.code)
	}
	if err != nil {
		return err.Error()
	}
	return "exit 0"
}

// reset removes the CA (and its directory) from every fleet host but the node.
func (c *config) reset(ctx context.Context) error {
	keep := c.fleet.Hosts[0].RancherDir()
	return c.fleet.FleetExec(ctx, fmt.Sprintf(`for d in %s/*/rancher; do [ "$d" = %s ] || rm -rf "$d/etc"; done`, lab.FleetRoot, keep))
}

// converged counts fleet hosts (the node excluded) whose ca.crt is the CA with mode 0400.
func (c *config) converged(ctx context.Context) (int, error) {
	var mu sync.Mutex
	total := 0
	keep := c.fleet.Hosts[0].RancherDir()
	var errs []error
	var wg sync.WaitGroup
	for _, ct := range c.fleet.Containers {
		wg.Go(func() {
			out, err := command(ctx, nil, "docker", "exec", ct.Name, "sh", "-c", fmt.Sprintf(
				`n=0; for d in %s/*/rancher; do [ "$d" = %s ] && continue; f="$d/etc/ssl/ca.crt"; [ -f "$f" ] && [ "$(stat -c %%a "$f")" = 400 ] && [ "$(sha256sum <"$f" | cut -d' ' -f1)" = %s ] && n=$((n+1)); done; echo $n`,
				lab.FleetRoot, keep, c.caDigest))
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

func (c *config) runHaplanPar(ctx context.Context, scn string, n int, manifest string, par int) (sample, error) {
	s, err := c.measure(ctx, "haplan", scn, n, func() *exec.Cmd {
		return exec.CommandContext(ctx, c.self, "haplan", scn, "-f", manifest, "-parallelism", strconv.Itoa(par))
	})
	s.Tool = fmt.Sprintf("haplan (parallelism %d)", par)
	return s, err
}

// run times one tool doing one scenario on n hosts.
func (c *config) run(ctx context.Context, tool, scn string, n int, manifest, inventory, profile string) (sample, error) {
	var mk func() *exec.Cmd
	switch tool {
	case "haplan":
		mk = func() *exec.Cmd {
			args := []string{"haplan", scn, "-f", manifest, "-parallelism", strconv.Itoa(c.parallelism)}
			if profile != "" {
				args = append(args, "-cpuprofile", profile+".cpu.pprof", "-memprofile", profile+".heap.pprof")
			}
			return exec.CommandContext(ctx, c.self, args...)
		}
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
		hosts := c.fleet.Hosts[1 : n+1]
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
	if tool == "haplan" {
		var r runnerResult
		if err := json.Unmarshal(out.Bytes(), &r); err != nil {
			return s, fmt.Errorf("haplan result: %w: %s", err, out.String())
		}
		s.Haplan = &r
		if scn == "plan" && r.Pending != 0 {
			return s, fmt.Errorf("haplan plan at N=%d is not a no-op: %d pending", n, r.Pending)
		}
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
	extra := ""
	if s.Haplan != nil {
		extra = fmt.Sprintf(" goroutines<=%d heap %.0f MiB", s.Haplan.PeakGoroutines, s.Haplan.HeapSysMiB)
	}
	fmt.Printf("%-26s %-5s N=%-5d %7.2f s  client cpu %6.2f s  fleet cpu %6.2f s  fleet rss %6.0f MiB  client rss %5.0f MiB%s\n",
		s.Tool, s.Scenario, s.N, s.Wall, s.ClientCPU, s.ServerCPU, s.FleetMemPeakMiB, s.ClientMaxRSSMiB, extra)
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

func pprofTop(prefix string) error {
	var b strings.Builder
	for _, p := range []struct{ file, flag string }{{".cpu.pprof", ""}, {".heap.pprof", "-sample_index=alloc_space"}} {
		args := []string{"tool", "pprof", "-top", "-nodecount=30"}
		if p.flag != "" {
			args = append(args, p.flag)
		}
		out, err := command(context.Background(), nil, "go", append(slices.Clone(args), prefix+p.file)...)
		if err != nil {
			return err
		}
		cum, err := command(context.Background(), nil, "go", append(args, "-cum", prefix+p.file)...)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "== %s (flat)\n%s\n== %s (cumulative)\n%s\n", p.file, out, p.file, cum)
	}
	return os.WriteFile(prefix+".txt", []byte(b.String()), 0o644)
}
