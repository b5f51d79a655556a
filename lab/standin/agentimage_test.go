package standin

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// agentLab is a TLS API server with the System HA certificate (as an HA
// node serves it), a fake host dockerd and a host file system.
type agentLab struct {
	api    *API
	be     *memBackend
	reg    *memRegistry
	srv    *httptest.Server
	bundle CertBundle
	fp     string
	engine *fakeEngine
	root   string
}

func newAgentLab(t *testing.T) *agentLab {
	t.Helper()
	al := &agentLab{be: newMemBackend(), reg: newMemRegistry(), root: t.TempDir()}
	b, err := GenerateSelfSigned("https://127.0.0.1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	al.bundle = b
	al.be.certs[certSystemSSL] = b
	al.fp, _ = CAFingerprint(b.Chain)
	al.api = &API{Store: al.be, Registry: al.reg, Transition: 30 * time.Millisecond}
	al.srv = httptest.NewUnstartedServer(al.api.Handler())
	pair, err := b.TLS()
	if err != nil {
		t.Fatal(err)
	}
	al.srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	// The agent's first try is without the CA: a handshake error.
	al.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	al.srv.StartTLS()
	t.Cleanup(al.srv.Close)
	// In HA api.host is the Host Registration URL.
	al.api.APIHost = al.srv.URL
	al.engine = newFakeEngine(t, DefaultAgentImage)
	al.engine.add("admiring_babbage", "0123456789ab"+strings.Repeat("f", 52), DefaultAgentImage, true)
	al.engine.OnStart = func(c *fakeContainer) {
		if cmd := c.strings("Cmd"); len(cmd) > 0 && cmd[0] == "state" {
			c.Output = "Rancher State\n"
		}
	}
	return al
}

// token makes an active token of the Default project and returns its
// registrationUrl and command.
func (al *agentLab) token(t *testing.T) (url, command string) {
	t.Helper()
	c := al.srv.Client()
	resp, err := c.Post(al.srv.URL+"/v1/registrationtokens?projectId=1a5", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	var tok map[string]any
	b := new(bytes.Buffer)
	b.ReadFrom(resp.Body)
	resp.Body.Close()
	tok = decode(t, b.Bytes())
	self := tok["links"].(map[string]any)["self"].(string)
	eventually(t, "the token to be active", func() bool {
		resp, err := c.Get(self)
		if err != nil {
			return false
		}
		b := new(bytes.Buffer)
		b.ReadFrom(resp.Body)
		resp.Body.Close()
		tok = decode(t, b.Bytes())
		return tok["state"] == "active"
	})
	return tok["registrationUrl"].(string), tok["command"].(string)
}

type agentResult struct {
	code           int
	stdout, stderr string
}

// run runs the agent image's entrypoint in the registration container.
func (al *agentLab) run(t *testing.T, args []string, env ...string) agentResult {
	t.Helper()
	var out, errb bytes.Buffer
	code := RunAgentImage(t.Context(), AgentOptions{
		Args: args, Environ: append([]string{"HOST_DOCKER_SOCK=/var/run/docker.sock", "RANCHER_AGENT_IMAGE=" + DefaultAgentImage}, env...),
		Root: al.root, Socket: al.engine.Socket, Hostname: "0123456789ab", Stdout: &out, Stderr: &errb,
		WaitTries: 3, WaitSleep: 5 * time.Millisecond, RootCAs: x509.NewCertPool(),
	})
	return agentResult{code, out.String(), errb.String()}
}

func (al *agentLab) file(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(al.root, p))
	if err != nil {
		return ""
	}
	return string(b)
}

// The command's args as the image gets them (after the image name).
func commandArgs(t *testing.T, command string) (env []string, args []string) {
	t.Helper()
	f := strings.Fields(command)
	for i := 0; i < len(f); i++ {
		switch {
		case f[i] == "-e":
			env = append(env, strings.ReplaceAll(f[i+1], `"`, ""))
			i++
		case f[i] == "-v":
			i++
		case f[i] == DefaultAgentImage:
			return env, f[i+1:]
		}
	}
	t.Fatalf("no image in %q", command)
	return nil, nil
}

// rancher/rancher v1.0.1 agent/run.sh with a registration URL and
// CA_FINGERPRINT, no ca.crt on the host: setup_self_signed fetches
// <url>/scripts/ca.crt insecurely and keeps it (check_and_add_conf names it
// in agent.conf); wait_for; setup_env loads the script, inspect makes the
// token (openssl rand -hex 64), register.py creates the register object;
// launch_agent makes rancher-agent-state (attached: its "Rancher State" is
// part of what launch_agent prints) and rancher-agent with the -e names it
// lists, and the container exits 0.
func TestAgentRegistration(t *testing.T) {
	al := newAgentLab(t)
	url, command := al.token(t)
	env, args := commandArgs(t, command)
	if !cmp.Equal(env, []string{"CA_FINGERPRINT=" + al.fp}) || !cmp.Equal(args, []string{url}) {
		t.Fatalf("command %q: env %v args %v", command, env, args)
	}
	res := al.run(t, args, append(env, "CATTLE_HOST_LABELS=role=app&zone=a")...)
	if res.code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", res.code, res.stdout, res.stderr)
	}
	v1 := al.srv.URL + "/v1"
	for _, want := range []string{
		"INFO: Running Agent Registration Process, CATTLE_URL=" + v1 + "\n",
		"INFO: Checking for Docker version >= 1.6.0\n",
		"INFO: Attempting to connect to: " + v1 + "\n",
		"INFO: " + v1 + " is accessible\n",
		"INFO: Inspecting host capabilities\n",
		"INFO: Host writable: true\n",
		"INFO: Token: xxxxxxxx\n",
		"INFO: Running registration\n",
		"INFO: ENV: CATTLE_SECRET_KEY=xxxxxxx\n",
		"INFO: Launched Rancher Agent: Rancher State\n" + strings.Repeat("0", 63) + "2\n",
	} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, res.stdout)
		}
	}
	first, _ := pem.Decode(al.bundle.Chain)
	if got := al.file(t, agentCACertFile); got != string(pem.EncodeToMemory(first)) {
		t.Errorf("ca.crt = %q", got)
	}
	if got := al.file(t, agentConfFile); got != "export CURL_CA_BUNDLE="+agentCACertFile+"\nexport REQUESTS_CA_BUNDLE="+agentCACertFile+"\n" {
		t.Errorf("agent.conf = %q", got)
	}
	if tok := al.file(t, agentTokenFile); !regexp.MustCompile(`^[0-9a-f]{128}\n$`).MatchString(tok) {
		t.Errorf(".registration_token = %q", tok)
	}
	st := al.engine.get(agentStateCont)
	if st == nil || !cmp.Equal(st.strings("Cmd"), []string{"state"}) ||
		!cmp.Equal(st.strings("Binds"), []string{"/var/log/rancher:/var/log/rancher", "/var/lib/rancher:/var/lib/rancher"}) {
		t.Fatalf("rancher-agent-state = %+v", st)
	}
	ag := al.engine.get(agentContainerNm)
	if ag == nil {
		t.Fatal("no rancher-agent")
	}
	hc := ag.hostConfig()
	if !cmp.Equal(ag.strings("Cmd"), []string{"run"}) || hc["NetworkMode"] != "host" || hc["PidMode"] != "host" || hc["Privileged"] != true ||
		hc["RestartPolicy"].(map[string]any)["Name"] != "always" || !cmp.Equal(ag.strings("VolumesFrom"), []string{agentStateCont}) {
		t.Errorf("rancher-agent host config = %v", hc)
	}
	if want := []string{"/var/run/docker.sock:/var/run/docker.sock", "/lib/modules:/lib/modules:ro", "/var/lib/docker:/var/lib/docker",
		"/proc:/host/proc", "/dev:/host/dev"}; !cmp.Equal(ag.strings("Binds"), want) {
		t.Errorf("rancher-agent binds = %v", ag.strings("Binds"))
	}
	agentEnv := map[string]string{}
	for _, kv := range ag.strings("Env") {
		k, v, _ := strings.Cut(kv, "=")
		agentEnv[k] = v
	}
	for k, v := range map[string]string{"CATTLE_AGENT_PIDNS": "host", "CATTLE_URL": v1, "CATTLE_AGENT_IP": "127.0.0.1",
		"CATTLE_HOST_LABELS": "role=app&zone=a", "CATTLE_SYSTEMD": "false", "HOST_DOCKER_SOCK": "/var/run/docker.sock"} {
		if agentEnv[k] != v {
			t.Errorf("rancher-agent %s = %q, want %q", k, agentEnv[k], v)
		}
	}
	if len(agentEnv["CATTLE_ACCESS_KEY"]) != 20 || len(agentEnv["CATTLE_SECRET_KEY"]) != 40 {
		t.Errorf("rancher-agent keys %v", agentEnv)
	}
	if _, ok := agentEnv["CA_FINGERPRINT"]; ok {
		t.Error("CA_FINGERPRINT is not among launch_agent's -e")
	}

	// rancher-agent reports: the host joins the Default project.
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Add(1)
	var runOut bytes.Buffer
	go func() {
		defer wg.Done()
		RunAgentImage(ctx, AgentOptions{Args: []string{"run"}, Environ: ag.strings("Env"), Root: al.root, Socket: al.engine.Socket,
			Hostname: "h1", Stdout: &runOut, Stderr: &runOut, ReportEvery: 10 * time.Millisecond, RootCAs: x509.NewCertPool()})
	}()
	c := al.srv.Client()
	var host map[string]any
	eventually(t, "the host to be active", func() bool {
		resp, err := c.Get(al.srv.URL + "/v1/projects/1a5/hosts?include=ipAddresses")
		if err != nil {
			return false
		}
		b := new(bytes.Buffer)
		b.ReadFrom(resp.Body)
		resp.Body.Close()
		data := decode(t, b.Bytes())["data"].([]any)
		if len(data) != 1 {
			return false
		}
		host = data[0].(map[string]any)
		return host["state"] == "active"
	})
	cancel()
	wg.Wait()
	if host["hostname"] != "h1" || !cmp.Equal(host["labels"], map[string]any{"role": "app", "zone": "a"}) ||
		host["ipAddresses"].([]any)[0].(map[string]any)["address"] != "127.0.0.1" || host["agentState"] != nil {
		t.Errorf("host = %v", host)
	}
	if !strings.Contains(runOut.String(), "INFO: Starting agent for "+agentEnv["CATTLE_ACCESS_KEY"]) {
		t.Errorf("rancher-agent output:\n%s", runOut.String())
	}
	dockerUUID := al.file(t, agentDockerUUID)
	if dockerUUID == "" {
		t.Error("no .docker_uuid in the state dir")
	}

	// Again on the same machine: the same register object (same keys),
	// rancher-agent deleted and made again, rancher-agent-state kept.
	res = al.run(t, args, env...)
	if res.code != 0 || !strings.Contains(res.stdout, "INFO: Deleting container rancher-agent\n") ||
		!regexp.MustCompile(`INFO: Launched Rancher Agent: 0+\d\n`).MatchString(res.stdout) {
		t.Errorf("second run: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	ags, _ := al.reg.Agents(t.Context())
	if len(ags) != 1 {
		t.Errorf("agents after re-running: %d", len(ags))
	}
	ag2 := al.engine.get(agentContainerNm)
	if ag2 == nil || ag2.ID == ag.ID || !slices.Contains(ag2.strings("Env"), "CATTLE_ACCESS_KEY="+agentEnv["CATTLE_ACCESS_KEY"]) {
		t.Errorf("second rancher-agent = %+v", ag2)
	}
}

// setup_self_signed keeps the CA only when its fingerprint is
// CA_FINGERPRINT; otherwise the server's certificate is not trusted and
// wait_for gives up ("Could not reach ... Giving up.", exit 1). A bad
// token is a 404 to curl -f, an unreachable server no answer: the same.
func TestAgentRegistrationFails(t *testing.T) {
	al := newAgentLab(t)
	url, _ := al.token(t)
	v1 := al.srv.URL + "/v1"
	check := func(name string, res agentResult, v1 string) {
		t.Helper()
		if res.code != 1 || strings.Count(res.stderr, "ERROR: "+v1+" is not accessible\n") != 3 ||
			!strings.HasSuffix(res.stderr, "ERROR: Could not reach "+v1+". Giving up.\n") {
			t.Errorf("%s: exit %d\nstderr:\n%s", name, res.code, res.stderr)
		}
		if al.engine.get(agentContainerNm) != nil {
			t.Errorf("%s: rancher-agent was created", name)
		}
	}
	check("wrong CA", al.run(t, []string{url}, "CA_FINGERPRINT=AA:"+al.fp[3:]), v1)
	if al.file(t, agentCACertFile) != "" {
		t.Error("a CA with the wrong fingerprint was kept")
	}
	check("no CA_FINGERPRINT", al.run(t, []string{url}), v1)
	check("bad token", al.run(t, []string{al.srv.URL + "/v1/scripts/ABC:123:xyz"}, "CA_FINGERPRINT="+al.fp), v1)
	if al.file(t, agentCACertFile) == "" {
		t.Error("the right CA was not kept")
	}
	check("unreachable", al.run(t, []string{"https://127.0.0.1:1/v1/scripts/x"}), "https://127.0.0.1:1/v1")

	// No dockerd to talk to.
	var out, errb bytes.Buffer
	code := RunAgentImage(t.Context(), AgentOptions{Args: []string{url}, Root: t.TempDir(), Socket: filepath.Join(t.TempDir(), "none.sock"),
		Stdout: &out, Stderr: &errb, RootCAs: x509.NewCertPool()})
	if code != 1 || !strings.Contains(errb.String(), "Please ensure Host Docker version is >= 1.6.0 and container has r/w permissions to docker.sock") {
		t.Errorf("no dockerd: exit %d %q", code, errb.String())
	}
	// run.sh without a parameter.
	out.Reset()
	errb.Reset()
	if code := RunAgentImage(t.Context(), AgentOptions{Stdout: &out, Stderr: &errb}); code != 1 || errb.String() != "ERROR: One parameter required\n" {
		t.Errorf("no args: %d %q", code, errb.String())
	}
}

// A ca.crt the operator put on the host (/var/lib/rancher/etc/ssl/ca.crt,
// bind-mounted) is trusted as it is; CATTLE_AGENT_IP wins over the detected
// address; deleting /var/lib/rancher/state makes a new registration.
func TestAgentRegistrationWithHostCA(t *testing.T) {
	al := newAgentLab(t)
	url, _ := al.token(t)
	if err := os.MkdirAll(filepath.Join(al.root, "/var/lib/rancher/etc/ssl"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(al.root, agentCACertFile), al.bundle.Chain, 0o400); err != nil {
		t.Fatal(err)
	}
	res := al.run(t, []string{url}, "CATTLE_AGENT_IP=10.213.2.1")
	if res.code != 0 {
		t.Fatalf("exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	if env := al.engine.get(agentContainerNm).strings("Env"); !slices.Contains(env, "CATTLE_AGENT_IP=10.213.2.1") {
		t.Errorf("env = %v", env)
	}
	if err := os.RemoveAll(filepath.Join(al.root, agentStateDir)); err != nil {
		t.Fatal(err)
	}
	if res := al.run(t, []string{url}); res.code != 0 {
		t.Fatalf("exit %d\n%s", res.code, res.stderr)
	}
	if ags, _ := al.reg.Agents(t.Context()); len(ags) != 2 {
		t.Errorf("agents after the state was deleted: %d, want 2", len(ags))
	}
}

// Config.labels: dict(urlparse.parse_qsl(CATTLE_HOST_LABELS)); print_url.
func TestAgentHelpers(t *testing.T) {
	if got := parseQSL("k1=v1&k2=v%202;k3=a+b&empty=&novalue&k1=last"); !cmp.Equal(got, map[string]string{"k1": "last", "k2": "v 2", "k3": "a b"}) {
		t.Errorf("parseQSL = %v", got)
	}
	for in, want := range map[string]string{
		"https://lb/v1/scripts/A:1:x":             "https://lb/v1",
		"http://s:8080/v1/projects/1a5/scripts/x": "http://s:8080/v1/projects/1a5/scripts/x",
	} {
		if got := printURL(in); got != want {
			t.Errorf("printURL(%q) = %q", in, got)
		}
	}
	for args, want := range map[string]bool{"": false, "https://x": true, "run": true, "state": true, "ha": false, "agent": false} {
		var a []string
		if args != "" {
			a = []string{args}
		}
		if got := agentImageMode(a, func(string) string { return "" }); got != want {
			t.Errorf("agentImageMode(%q) = %t", args, got)
		}
	}
	if !agentImageMode(nil, func(k string) string { return map[string]string{"STANDIN_IMAGE": "rancher/agent"}[k] }) {
		t.Error("no args in the agent image is run.sh's")
	}
}
