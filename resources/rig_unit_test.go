package resources

// The rig of the step unit tests: a manifest loaded as haplan loads it, an
// Env whose SSH is replaced by transporttest doubles (Options.Connect),
// and the real engine driving one step kind at a time.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/haplan/haplan/engine"
	"github.com/haplan/haplan/layout"
	"github.com/haplan/haplan/manifests"
	"github.com/haplan/haplan/plans"
	"github.com/haplan/haplan/transport"
	"github.com/haplan/haplan/transport/transporttest"
)

const (
	unitDBPassword    = "Db-pw-7f3kq"
	unitAdminPassword = "Adm-pw-91xz"
)

const unitManifest = `name: unit
rancher:
  hostRegistrationUrl: https://rancher.example.com
  timeouts: {pull: 7m, command: 45s}
database:
  host: 10.0.0.20
  password: {file: db-password}
  admin: {user: root, password: {file: db-admin-password}}
loadBalancer:
  address: 10.0.0.10
  haproxy: {}
nodes:
  - {name: rs1, address: 10.0.0.11}
  - {name: rs2, address: 10.0.0.12}
  - {name: rs3, address: 10.0.0.13}
hosts:
  - {name: h1, address: 10.0.1.1}
`

var errNoUnitDB = errors.New("no database server in unit tests")

type rig struct {
	t     *testing.T
	c     *manifests.Cluster
	env   *Env
	fleet *transporttest.Fleet
	steps map[engine.Addr]engine.Step
}

// newRig loads unitManifest, lets mods change the cluster, and compiles it
// against an Env whose machines are transporttest doubles.
func newRig(t *testing.T, mods ...func(*manifests.Cluster)) *rig {
	t.Helper()
	dir := t.TempDir()
	for f, v := range map[string]string{"db-password": unitDBPassword, "db-admin-password": unitAdminPassword} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c, ds := manifests.Loader{HomeDir: t.TempDir()}.LoadBytes("cluster.yaml", []byte(unitManifest), dir)
	if ds.HasErrors() {
		t.Fatalf("manifest: %v", ds.Err())
	}
	for _, m := range mods {
		m(c)
	}
	fleet := transporttest.NewFleet(layout.LBHost)
	// Every machine of the manifest is its own: its own SSH host keys,
	// when asked (a departed address is compared with them).
	for _, n := range c.Nodes {
		ownHostKeys(fleet.Host(n.Name), n.Name)
	}
	for _, h := range c.Hosts {
		ownHostKeys(fleet.Host(h.Name), h.Name)
	}
	env, err := NewEnv(c, Options{Connect: fleet.Connect, SSHConfigFiles: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.Close() })
	// No database server in unit tests: the admin connection fails at
	// once (steps that need it are tested on the lab).
	env.dbOnce.Do(func() { env.dbErr = errNoUnitDB })
	fleet.SetRedact(env.Redactor().String)
	steps, err := Compile(c, env)
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, c: c, env: env, fleet: fleet, steps: map[engine.Addr]engine.Step{}}
	for _, s := range steps {
		r.steps[s.Addr()] = s
	}
	return r
}

func (r *rig) host(name string) *transporttest.Runner { return r.fleet.Host(name) }

// graph is a graph of the named steps alone. Their dependencies on other
// steps are dropped: those would need expectations of their own (and the
// db.* steps MySQL), and the engine applies a step only once its
// dependencies are done, which is not what these tests are about.
// Barriers and checks stay what they are.
func (r *rig) graph(addrs ...engine.Addr) *engine.Graph {
	r.t.Helper()
	in := map[engine.Addr]bool{}
	for _, a := range addrs {
		in[a] = true
	}
	var steps []engine.Step
	for _, a := range addrs {
		s, ok := r.steps[a]
		if !ok {
			r.t.Fatalf("no step %s", a)
		}
		var deps []engine.Addr
		for _, d := range s.Deps() {
			if in[d] {
				deps = append(deps, d)
			}
		}
		steps = append(steps, isolate(s, deps))
	}
	g, err := engine.NewGraph(steps)
	if err != nil {
		r.t.Fatal(err)
	}
	return g
}

type solo struct {
	engine.Step
	deps []engine.Addr
}

func (s solo) Deps() []engine.Addr { return s.deps }

type soloBarrier struct {
	solo
	group string
}

func (s soloBarrier) BarrierGroup() string { return s.group }

type soloCheck struct{ solo }

func (soloCheck) IsCheck() bool { return true }

func isolate(s engine.Step, deps []engine.Addr) engine.Step {
	base := solo{Step: s, deps: deps}
	if b, ok := s.(engine.Barrier); ok {
		return soloBarrier{base, b.BarrierGroup()}
	}
	if c, ok := s.(engine.Checker); ok && c.IsCheck() {
		return soloCheck{base}
	}
	return base
}

// mark is where each host's record of commands stands, to look at one
// phase's commands alone.
type mark map[string]int

func (r *rig) mark() mark {
	m := mark{}
	for _, h := range r.hosts() {
		m[h] = len(r.host(h).Calls())
	}
	return m
}

// since returns host's commands after m.
func (r *rig) since(m mark, host string) []transport.Cmd {
	return r.host(host).Calls()[m[host]:]
}

func (r *rig) hosts() []string {
	hs := []string{layout.LBHost}
	for _, n := range r.c.Nodes {
		hs = append(hs, n.Name)
	}
	for _, h := range r.c.Hosts {
		hs = append(hs, h.Name)
	}
	return hs
}

// plan makes the plan of g and checks what every probe must hold to: it
// sent the machines no mutating command and no secret.
func (r *rig) plan(g *engine.Graph) *plans.Plan {
	r.t.Helper()
	m := r.mark()
	p, err := engine.Plan(context.Background(), g, engine.Options{})
	if err != nil {
		r.t.Fatalf("plan: %v", err)
	}
	for _, h := range r.hosts() {
		for _, c := range r.since(m, h) {
			if c.Mutates {
				r.t.Errorf("%s: a probe ran a mutating command: %q", h, c.Line)
			}
		}
	}
	r.noSecretInLines()
	return p
}

// apply applies p over g and checks that no command line carried a secret.
func (r *rig) apply(g *engine.Graph, p *plans.Plan) (*engine.Result, error) {
	r.t.Helper()
	res, err := engine.Apply(context.Background(), g, p, engine.Options{})
	if res == nil {
		r.t.Fatalf("apply refused the plan: %v", err)
	}
	r.noSecretInLines()
	return res, err
}

func (r *rig) noSecretInLines() {
	r.t.Helper()
	for _, h := range r.hosts() {
		for _, c := range r.host(h).Calls() {
			for _, s := range []string{unitDBPassword, unitAdminPassword} {
				if strings.Contains(c.Line, s) {
					r.t.Errorf("%s: a command line carries a password: %q", h, c.Line)
				}
			}
		}
	}
}

// planned is the plan's change for addr.
func planned(t *testing.T, p *plans.Plan, addr engine.Addr) plans.Change {
	t.Helper()
	for _, c := range p.Changes {
		if c.Addr == string(addr) {
			return c
		}
	}
	t.Fatalf("the plan has no change for %s", addr)
	return plans.Change{}
}

// outcome is addr's result in res.
func outcome(t *testing.T, res *engine.Result, addr engine.Addr) engine.StepResult {
	t.Helper()
	s, ok := res.Step(addr)
	if !ok {
		t.Fatalf("no result for %s", addr)
	}
	return s
}

// mutating returns the lines of the commands that change the host.
func mutating(cmds []transport.Cmd) []string {
	var out []string
	for _, c := range cmds {
		if c.Mutates {
			out = append(out, c.Line)
		}
	}
	return out
}

// indexOf is the position of the first command m matches, -1 if none.
func indexOf(cmds []transport.Cmd, m transporttest.Matcher) int {
	for i, c := range cmds {
		if m.Matches(c) {
			return i
		}
	}
	return -1
}

// inSequence reports whether cmds are exactly what seq matches, in order.
func inSequence(cmds []transport.Cmd, seq []transporttest.Matcher) bool {
	if len(cmds) != len(seq) {
		return false
	}
	for i, m := range seq {
		if !m.Matches(cmds[i]) {
			return false
		}
	}
	return true
}

func lines(cmds []transport.Cmd) []string {
	var out []string
	for _, c := range cmds {
		out = append(out, c.Line)
	}
	return out
}

// Matchers of what dockerapi runs when the Engine API cannot be dialled
// (the doubles refuse every dial unless told otherwise): the docker CLI.
func inspectImage(img string) transporttest.Matcher {
	return transporttest.Regexp(`^out=\$\(docker inspect --type image --format '\{\{\.Id\}\}' `+regexp.QuoteMeta(transport.Quote(img))+` 2>&1\)`).
		And("read-only", func(c transport.Cmd) bool { return !c.Mutates })
}

func inspectContainer(name string) transporttest.Matcher {
	return transporttest.Regexp(`^out=\$\(docker inspect --type container --format '\{\{\.State\.Status\}\} \{\{\.Config\.Image\}\} \{\{\.State\.ExitCode\}\}' `+regexp.QuoteMeta(transport.Quote(name))+` 2>&1\)`).
		And("read-only", func(c transport.Cmd) bool { return !c.Mutates })
}

// readHostKeys matches the read of a machine's SSH host public keys.
var readHostKeys = transporttest.Line("cat /etc/ssh/ssh_host_*_key.pub 2>/dev/null || true")

// ownHostKeys gives a machine's double SSH host keys of its own, named
// after it: the key it verified, and the files when asked.
func ownHostKeys(h *transporttest.Runner, name string) *transporttest.Runner {
	h.SetHostKey("SHA256:ed25519-of-" + name)
	h.On(readHostKeys).Stdout("ssh-ed25519 AAAAC3" + name + " root@" + name + "\nssh-rsa AAAAB3" + name + " root@" + name + "\n").Maybe()
	return h
}

// readScripts matches the read of a node's script digest and params.
var readScripts = transporttest.Line(fmt.Sprintf("if [ -f %[1]s ]; then sha256sum %[1]s | cut -d' ' -f1; else echo -; fi; cat %[2]s 2>/dev/null || true", layout.Script, layout.ScriptMeta))

// noScript makes the nodes answer that they hold no rancher-ha.sh.
func (r *rig) noScript(nodes ...string) {
	for _, n := range nodes {
		r.host(n).On(readScripts).Stdout("-\n")
	}
}

// holdScript makes node answer that it holds script, generated with the
// manifest's params.
func (r *rig) holdScript(node string, script []byte) {
	sum := sha256.Sum256(script)
	meta, err := json.Marshal(scriptMeta{scriptParams: r.env.wantParams(), ScriptDigest: digest(script)})
	if err != nil {
		r.t.Fatal(err)
	}
	r.host(node).On(readScripts).Stdout(hex.EncodeToString(sum[:]) + "\n" + string(meta) + "\n")
}

// fakeRancher is the part of a Rancher server's API the steps use before
// the cluster forms: /ping, /v1/haconfigs, createscript and enabling HA.
type fakeRancher struct {
	mu          sync.Mutex
	dbHost      string
	script      []byte
	enabled     bool
	clusterSize int
	created     []map[string]any // createscript inputs
	requests    []string
}

func (f *fakeRancher) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, req.Method+" "+req.URL.RequestURI())
	self := "http://" + req.Host + "/v1/haconfigs/haconfig"
	cfg := func() map[string]any {
		return map[string]any{"id": "haConfig", "type": "haConfig", "enabled": f.enabled, "clusterSize": f.clusterSize,
			"dbHost": f.dbHost, "actions": map[string]string{"createscript": self + "?action=createscript"},
			"links": map[string]string{"self": self}}
	}
	writeJSON := func(v any) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(v)
	}
	switch {
	case req.Method == http.MethodGet && req.URL.Path == "/ping":
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("pong"))
	case req.Method == http.MethodGet && req.URL.Path == "/v1/haconfigs":
		writeJSON(map[string]any{"type": "collection", "resourceType": "haConfig", "data": []any{cfg()}})
	case req.Method == http.MethodPost && req.URL.Path == "/v1/haconfigs/haconfig" && req.URL.Query().Get("action") == "createscript":
		var in map[string]any
		if err := json.NewDecoder(req.Body).Decode(&in); err != nil {
			http.Error(w, err.Error(), http.StatusUnprocessableEntity)
			return
		}
		f.created = append(f.created, in)
		n, _ := in["clusterSize"].(float64)
		f.clusterSize = int(n)
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(f.script)
	case req.Method == http.MethodPut && req.URL.Path == "/v1/haconfigs/haconfig":
		var in struct{ Enabled bool }
		if err := json.NewDecoder(req.Body).Decode(&in); err != nil {
			http.Error(w, err.Error(), http.StatusUnprocessableEntity)
			return
		}
		f.enabled = in.Enabled
		writeJSON(cfg())
	default:
		http.NotFound(w, req)
	}
}

// serveOn makes node's double answer dials of 127.0.0.1:port with h (as a
// server published on the node's loopback); other dials are refused.
func serveOn(t *testing.T, node *transporttest.Runner, port int, h http.Handler) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	want := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	node.OnDial(func(ctx context.Context, network, addr string) (net.Conn, error) {
		if network != "tcp" || addr != want {
			return nil, errors.New("connect: connection refused")
		}
		var d net.Dialer
		return d.DialContext(ctx, "tcp", srv.Listener.Addr().String())
	})
}
