package standin

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The rancher/agent:v1.0.1 stand-in, following rancher/rancher v1.0.1
// agent/run.sh, agent/register.py and agent/resolve_url.py as far as a
// client can observe: the log lines (INFO: on stdout, ERROR: on stderr),
// the exit codes, the files under /var/lib/rancher and the containers it
// makes through the host's dockerd. The image's entrypoint is run.sh; its
// first argument selects the mode:
//
//	<registration URL>, register   register the host, (re)create rancher-agent, exit
//	run                            rancher-agent: report to the server until stopped
//	state                          rancher-agent-state: print "Rancher State" and exit
//	inspect-host                   print the host's registration token and capabilities
//
// (the "agent" mode, the stand-in's HA-node agent, is runAgent).
//
// What the stand-in does differently: inspect-host runs in the
// registration container itself rather than in a second container (it
// reads and writes the same bind-mounted /var/lib/rancher); a CATTLE_URL
// naming localhost or 127.0.0.1 is not rewritten to the host's address; a
// URL that does not serve the registration script is not resolved through
// the API (resolve_url.py's fallback for a bare server URL): it fails as a
// script that cannot be loaded; rancher-agent does not fetch and run
// /v1/scripts/bootstrap (the python agent) but publishes a ping answer
// with the host's resources every AgentOptions.ReportEvery.

// Paths and names from run.sh.
const (
	agentConfFile    = "/var/lib/rancher/etc/agent.conf"
	agentCACertFile  = "/var/lib/rancher/etc/ssl/ca.crt"
	agentStateDir    = "/var/lib/rancher/state"
	agentTokenFile   = agentStateDir + "/.registration_token"
	agentDockerUUID  = agentStateDir + "/.docker_uuid"
	agentPhysicalID  = agentStateDir + "/.physical_host_uuid"
	agentContainerNm = "rancher-agent"
	agentStateCont   = "rancher-agent-state"
	agentUpgradeCont = "rancher-agent-upgrade"
	// agentClientVersion is the docker client the image ships
	// (agent/Dockerfile: docker-1.6.0), which speaks Engine API v1.18.
	agentClientVersion = "1.6.0"
	agentAPIVersion    = "v1.18"
)

// errExit is run.sh exiting with a status, having said why.
type errExit struct{ code int }

func (e errExit) Error() string { return "exit status " + strconv.Itoa(e.code) }

// AgentOptions configures the agent stand-in.
type AgentOptions struct {
	Args    []string
	Environ []string // the container's environment ("NAME=value")
	// Root is where the container's file system starts ("/"; tests use a
	// temporary directory).
	Root string
	// Socket is the host's Docker socket (/var/run/docker.sock).
	Socket string
	// Hostname is the container's host name: its id in the registration
	// container, the host's name in rancher-agent (--net=host).
	Hostname string
	Stdout   io.Writer
	Stderr   io.Writer
	// WaitTries and WaitSleep: wait_for tries the server 300 times, 2 s
	// apart (CATTLE_STANDIN_WAIT_TRIES overrides the count).
	WaitTries int
	WaitSleep time.Duration
	// ReportEvery is how often rancher-agent reports (5 s, the server's
	// ping schedule).
	ReportEvery time.Duration
	// RootCAs are the image's trusted CAs besides ca.crt (nil: the
	// system pool, empty in the scratch image).
	RootCAs *x509.CertPool
}

type agentRun struct {
	o      AgentOptions
	env    map[string]string
	d      *docker
	pool   *x509.CertPool // trusted for the server: RootCAs plus ca.crt once set up
	caSet  bool
	ctx    context.Context
	stdout io.Writer
	stderr io.Writer
}

// RunAgentImage runs the agent image's entrypoint and returns its exit
// status.
func RunAgentImage(ctx context.Context, o AgentOptions) int {
	if o.Root == "" {
		o.Root = "/"
	}
	if o.Socket == "" {
		o.Socket = "/var/run/docker.sock"
	}
	if o.WaitTries == 0 {
		o.WaitTries = 300
	}
	if o.WaitSleep == 0 {
		o.WaitSleep = 2 * time.Second
	}
	if o.ReportEvery == 0 {
		o.ReportEvery = 5 * time.Second
	}
	ar := &agentRun{o: o, env: map[string]string{}, d: newDockerVersion(o.Socket, agentAPIVersion), ctx: ctx,
		stdout: o.Stdout, stderr: o.Stderr}
	for _, kv := range o.Environ {
		k, v, _ := strings.Cut(kv, "=")
		ar.env[k] = v
	}
	if n, err := strconv.Atoi(ar.env["CATTLE_STANDIN_WAIT_TRIES"]); err == nil && n > 0 {
		ar.o.WaitTries = n
	}
	ar.pool = o.RootCAs
	if ar.pool == nil {
		if p, err := x509.SystemCertPool(); err == nil {
			ar.pool = p
		} else {
			ar.pool = x509.NewCertPool()
		}
	}
	err := ar.main()
	var ex errExit
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ex):
		return ex.code
	case ctx.Err() != nil:
		return 1 // trap "exit 1" SIGINT SIGTERM
	default:
		ar.errorf("%v", err)
		return 1
	}
}

func (ar *agentRun) infof(format string, a ...any) {
	fmt.Fprintf(ar.stdout, "INFO: "+format+"\n", a...)
}

func (ar *agentRun) errorf(format string, a ...any) {
	fmt.Fprintf(ar.stderr, "ERROR: "+format+"\n", a...)
}

func (ar *agentRun) path(p string) string { return filepath.Join(ar.o.Root, p) }

func (ar *agentRun) lookup(k string) (string, bool) { v, ok := ar.env[k]; return v, ok }

func (ar *agentRun) main() error {
	args := ar.o.Args
	if len(args) == 0 {
		ar.errorf("One parameter required")
		return errExit{1}
	}
	mode := args[0]
	container := ar.o.Hostname
	if mode == "run" {
		container = agentContainerNm
	}
	if mode != "inspect-host" && mode != "--" && mode != "state" {
		if c, ok, err := ar.d.inspect(ar.ctx, container); err == nil && ok && c.Config.Image != "" && c.Config.Image != ar.env["RANCHER_AGENT_IMAGE"] {
			ar.env["RANCHER_AGENT_IMAGE"] = c.Config.Image
		}
	}
	if ar.env["RANCHER_AGENT_IMAGE"] == "" {
		ar.env["RANCHER_AGENT_IMAGE"] = DefaultAgentImage
	}
	if _, err := os.Stat(ar.path(agentCACertFile)); err == nil {
		if err := ar.setupCustomCABundle(); err != nil {
			return err
		}
	} else {
		ar.setupSelfSigned(mode)
	}
	if b, err := os.ReadFile(ar.path(agentConfFile)); err == nil {
		if err := ParseExports(bytes.NewReader(b), ar.env); err != nil {
			return err
		}
	}
	switch {
	case strings.Contains(mode, "http") || mode == "register" || mode == "upgrade":
		return ar.registration(mode)
	case mode == "inspect-host":
		return ar.inspectHost()
	case mode == "state":
		fmt.Fprintln(ar.stdout, "Rancher State")
		return nil
	case mode == "run":
		return ar.run()
	case mode == "--":
		ar.errorf("exec is not modelled by the stand-in: %s", strings.Join(args[1:], " "))
		return errExit{127}
	}
	return nil
}

// printURL is run.sh print_url: the URL up to /v1 of a /v1/scripts URL.
func printURL(u string) string {
	if i := strings.Index(u, "/v1/scripts"); i >= 0 {
		return u[:i] + "/v1"
	}
	return u
}

// client trusts pool; insecure skips verification (curl --insecure).
func (ar *agentRun) client(insecure bool) *http.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ar.pool, InsecureSkipVerify: insecure}, //nolint:gosec // curl --insecure
		Proxy: http.ProxyFromEnvironment}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// curl GETs u as curl -sL[f] does: redirects followed; with fail, a
// status of 400 or more is an error.
func (ar *agentRun) curl(u string, insecure, fail bool, auth ...string) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ar.ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, err
	}
	if len(auth) == 2 {
		req.SetBasicAuth(auth[0], auth[1])
	}
	resp, err := ar.client(insecure).Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, resp.StatusCode, err
	}
	if fail && resp.StatusCode >= 400 {
		return b, resp.StatusCode, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return b, resp.StatusCode, nil
}

// checkAndAddConf is run.sh check_and_add_conf.
func (ar *agentRun) checkAndAddConf(k, v string) error {
	conf := ar.path(agentConfFile)
	if fi, err := os.Stat(filepath.Dir(conf)); err != nil || !fi.IsDir() {
		return nil
	}
	cur, err := os.ReadFile(conf)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if bytes.Contains(cur, []byte(k+"="+v)) {
		return nil
	}
	f, err := os.OpenFile(conf, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(f, "export %s=%s\n", k, v); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// setupCustomCABundle is run.sh setup_custom_ca_bundle: ca.crt is named
// in agent.conf and trusted from then on.
func (ar *agentRun) setupCustomCABundle() error {
	if err := ar.checkAndAddConf("CURL_CA_BUNDLE", agentCACertFile); err != nil {
		return err
	}
	if err := ar.checkAndAddConf("REQUESTS_CA_BUNDLE", agentCACertFile); err != nil {
		return err
	}
	b, err := os.ReadFile(ar.path(agentCACertFile))
	if err != nil {
		return err
	}
	ar.pool = ar.pool.Clone()
	n := 0
	if ar.pool.AppendCertsFromPEM(b) {
		n = 1
	}
	ar.caSet = true
	// update-ca-certificates
	fmt.Fprintf(ar.stdout, "Updating certificates in /etc/ssl/certs... %d added, 0 removed; done.\n", n)
	fmt.Fprintln(ar.stdout, "Running hooks in /etc/ca-certificates/update.d....done.")
	return nil
}

// setupSelfSigned is run.sh setup_self_signed: with CA_FINGERPRINT and an
// https URL the server does not already prove itself to, fetch
// <url up to /v1>/scripts/ca.crt without verification and keep its first
// certificate as ca.crt only if its SHA-1 fingerprint (openssl x509
// -fingerprint: upper-case hex pairs and colons) is CA_FINGERPRINT. Every
// failure is silent: the server then cannot be reached (wait_for).
func (ar *agentRun) setupSelfSigned(u string) {
	fp := ar.env["CA_FINGERPRINT"]
	if fp == "" || !strings.Contains(u, "https://") {
		return
	}
	if _, _, err := ar.curl(u, false, true); err == nil {
		return
	}
	b, _, err := ar.curl(printURL(u)+"/scripts/ca.crt", true, true)
	if err != nil {
		return
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return
	}
	if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
		return
	}
	sum := sha1.Sum(blk.Bytes)
	pairs := make([]string, len(sum))
	for i, c := range sum {
		pairs[i] = fmt.Sprintf("%02X", c)
	}
	if strings.Join(pairs, ":") != fp {
		return
	}
	clean := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: blk.Bytes})
	if err := os.MkdirAll(filepath.Dir(ar.path(agentCACertFile)), 0o755); err != nil {
		return
	}
	if err := os.WriteFile(ar.path(agentCACertFile), clean, 0o644); err != nil {
		return
	}
	_ = ar.setupCustomCABundle()
}

// registration is run.sh for a URL, register or upgrade.
func (ar *agentRun) registration(mode string) error {
	fmt.Fprintln(ar.stdout, strings.TrimSpace(ar.env["http_proxy"]+" "+ar.env["https_proxy"]))
	switch mode {
	case "register":
		if ar.env["RANCHER_URL"] == "" {
			ar.infof("No RANCHER_URL environment variable, exiting")
			return nil
		}
		ar.env["CATTLE_URL"] = ar.env["RANCHER_URL"]
	case "upgrade":
		ar.errorf("upgrade is not modelled by the stand-in")
		return errExit{1}
	default:
		ar.env["CATTLE_URL"] = mode
	}
	ar.infof("Running Agent Registration Process, CATTLE_URL=%s", printURL(ar.env["CATTLE_URL"]))
	if err := ar.verifyDocker(); err != nil {
		return err
	}
	if err := ar.waitFor(); err != nil {
		return err
	}
	if err := ar.setupEnv(); err != nil {
		return err
	}
	if err := ar.deleteContainer(agentContainerNm); err != nil {
		return err
	}
	id, err := ar.launchAgent()
	if err != nil {
		return err
	}
	ar.infof("Launched Rancher Agent: %s", id)
	return nil
}

// verifyDocker is run.sh verify_docker_client_server_version: the image's
// docker 1.6.0 client must reach the daemon.
func (ar *agentRun) verifyDocker() error {
	ar.infof("Checking for Docker version >= %s", agentClientVersion)
	var v struct {
		Version       string
		APIVersion    string `json:"ApiVersion"`
		GoVersion     string
		GitCommit     string
		Os            string
		Arch          string
		KernelVersion string
	}
	if err := ar.d.getJSON(ar.ctx, "/version", &v); err != nil {
		fmt.Fprintf(ar.stderr, "Please ensure Host Docker version is >= %s and container has r/w permissions to docker.sock\n", agentClientVersion)
		return errExit{1}
	}
	ar.infof("Found Server version: %s", v.Version)
	for _, l := range []string{
		"Client version: " + agentClientVersion, "Client API version: 1.18", "Go version (client): go1.4.2",
		"Git commit (client): 4749651", "OS/Arch (client): linux/amd64",
		"Server version: " + v.Version, "Server API version: " + v.APIVersion, "Go version (server): " + v.GoVersion,
		"Git commit (server): " + v.GitCommit, "OS/Arch (server): " + v.Os + "/" + v.Arch,
	} {
		ar.infof("docker version: %s", l)
	}
	var info struct {
		Containers      int
		Images          int
		Driver          string
		KernelVersion   string
		OperatingSystem string
		NCPU            int
		MemTotal        int64
		Name            string
		ID              string
	}
	if err := ar.d.getJSON(ar.ctx, "/info", &info); err == nil {
		for _, l := range []string{
			fmt.Sprintf("Containers: %d", info.Containers), fmt.Sprintf("Images: %d", info.Images),
			"Storage Driver: " + info.Driver, "Kernel Version: " + info.KernelVersion,
			"Operating System: " + info.OperatingSystem, fmt.Sprintf("CPUs: %d", info.NCPU),
			fmt.Sprintf("Total Memory: %.3f GiB", float64(info.MemTotal)/(1<<30)), "Name: " + info.Name, "ID: " + info.ID,
		} {
			ar.infof("docker info: %s", l)
		}
	}
	return nil
}

// waitFor is run.sh wait_for.
func (ar *agentRun) waitFor() error {
	u := printURL(ar.env["CATTLE_URL"])
	ar.infof("Attempting to connect to: %s", u)
	for i := 0; i < ar.o.WaitTries; i++ {
		if _, _, err := ar.curl(ar.env["CATTLE_URL"], false, true); err == nil {
			ar.infof("%s is accessible", u)
			return nil
		}
		ar.errorf("%s is not accessible", u)
		select {
		case <-ar.ctx.Done():
			return ar.ctx.Err()
		case <-time.After(ar.o.WaitSleep):
		}
		if i == ar.o.WaitTries-1 {
			ar.errorf("Could not reach %s. Giving up.", u)
			return errExit{1}
		}
	}
	return errExit{1}
}

// loadRE is load()'s [[ "$content" =~ .!/bin/sh.* ]].
var loadRE = regexp.MustCompile(`(?s).!/bin/sh`)

// setupEnv is run.sh setup_env (not upgrade): load the registration
// script, inspect the host, register unless keys are known.
func (ar *agentRun) setupEnv() error {
	envURL := ar.env["CATTLE_URL"]
	// resolve_url.py: a URL that answers 200 with the script is the
	// script's URL.
	content, _, err := ar.curl(envURL, false, false)
	if err != nil || !loadRE.Match(content) {
		ar.errorf("%s returned", printURL(envURL))
		ar.errorf("--- START ---")
		fmt.Fprintln(ar.stdout, string(content))
		ar.errorf("--- END ---")
		ar.errorf("Failed to load registration env from CATTLE_URL=%s ENV_URL=%s", printURL(ar.env["CATTLE_URL"]), printURL(envURL))
		ar.errorf("Please ensure the proper value for the Host Registration URL is set")
		return errExit{1}
	}
	if err := ParseExports(bytes.NewReader(content), ar.env); err != nil {
		return err
	}
	if v := ar.env["CATTLE_URL_OVERRIDE"]; v != "" {
		ar.env["CATTLE_URL"] = v
	}
	ar.infof("Inspecting host capabilities")
	if err := ar.inspect(); err != nil {
		return err
	}
	ar.infof("System: %s", ar.env["CATTLE_SYSTEMD"])
	ar.infof("Host writable: %s", ar.env["CATTLE_VAR_LIB_WRITABLE"])
	ar.infof("Token: xxxxxxxx")
	if ar.env["CATTLE_ACCESS_KEY"] == "" || ar.env["CATTLE_SECRET_KEY"] == "" {
		ar.infof("Running registration")
		if err := ar.register(); err != nil {
			return err
		}
	} else {
		ar.infof("Skipping registration")
	}
	ar.infof("Printing Environment")
	keys := make([]string, 0, len(ar.env))
	for k := range ar.env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	secret := regexp.MustCompile(`(SECRET.*=).*`)
	for _, k := range keys {
		line := k + "=" + ar.env[k]
		if strings.Contains(line, "RANCHER") || strings.Contains(line, "CATTLE") {
			ar.infof("ENV: %s", secret.ReplaceAllString(line, "${1}xxxxxxx"))
		}
	}
	return nil
}

// inspect is what inspect_host's container reports (run.sh inspect):
// the registration token, made once with openssl rand -hex 64, and the
// host's capabilities.
func (ar *agentRun) inspect() error {
	tok := ""
	if b, err := os.ReadFile(ar.path(agentTokenFile)); err == nil {
		tok = strings.TrimSpace(string(b))
	}
	if tok == "" {
		b := make([]byte, 64)
		if _, err := rand.Read(b); err != nil {
			return err
		}
		tok = hex.EncodeToString(b)
		if err := os.MkdirAll(ar.path(agentStateDir), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(ar.path(agentTokenFile), []byte(tok+"\n"), 0o644); err != nil {
			return err
		}
	}
	ar.env["TOKEN"] = tok
	ar.env["CATTLE_VAR_LIB_WRITABLE"] = "false"
	if os.MkdirAll(ar.path(agentStateDir), 0o755) == nil {
		ar.env["CATTLE_VAR_LIB_WRITABLE"] = "true"
	}
	ar.env["CATTLE_RANCHEROS"] = "false"
	if _, err := os.Stat(ar.path("/var/run/system-docker.sock")); err == nil {
		ar.env["CATTLE_RANCHEROS"] = "true"
	}
	ar.env["CATTLE_SYSTEMD"] = "false"
	if _, err := os.Stat(ar.path("/run/systemd/system")); err == nil {
		ar.env["CATTLE_SYSTEMD"] = "true"
	}
	return nil
}

func (ar *agentRun) inspectHost() error {
	if err := ar.inspect(); err != nil {
		return err
	}
	for _, k := range []string{"TOKEN", "CATTLE_VAR_LIB_WRITABLE", "CATTLE_RANCHEROS", "CATTLE_SYSTEMD"} {
		ar.infof("env %s=%s", k, ar.env[k])
	}
	return nil
}

// api calls the server as the python cattle client does.
func (ar *agentRun) api(method, path string, body any, access, secret string, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	u := path
	if !strings.HasPrefix(path, "http") {
		u = strings.TrimRight(ar.env["CATTLE_URL"], "/") + path
	}
	req, err := http.NewRequestWithContext(ar.ctx, method, u, rd)
	if err != nil {
		return 0, err
	}
	req.SetBasicAuth(access, secret)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := ar.client(false).Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode < 300 {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return resp.StatusCode, err
		}
	}
	return resp.StatusCode, nil
}

type registerObj struct {
	ID            string            `json:"id"`
	State         string            `json:"state"`
	Transitioning string            `json:"transitioning"`
	AccessKey     string            `json:"accessKey"`
	SecretKey     string            `json:"secretKey"`
	Links         map[string]string `json:"links"`
}

// register is run.sh register with register.py: list the register object
// of this host's token, or create it, wait for it, and take the agent's
// keys from it; CATTLE_AGENT_IP defaults to the address the server saw.
func (ar *agentRun) register() error {
	access, secret := ar.env["CATTLE_REGISTRATION_ACCESS_KEY"], ar.env["CATTLE_REGISTRATION_SECRET_KEY"]
	if access == "" || secret == "" {
		fmt.Fprintln(ar.stderr, "ERROR:root:Missing CATTLE_REGISTRATION_ACCESS_KEY or CATTLE_REGISTRATION_SECRET_KEY")
		return errExit{1}
	}
	// client.valid(): the API answers with its schemas.
	if code, err := ar.api(http.MethodGet, "", nil, access, secret, nil); err != nil || code != http.StatusOK {
		// register.py prints "echo Invalid API credentials; exit 1",
		// which run.sh evaluates.
		fmt.Fprintln(ar.stdout, "Invalid API credentials")
		return errExit{1}
	}
	key := ar.env["TOKEN"]
	list := func() ([]registerObj, error) {
		var c struct {
			Data []registerObj `json:"data"`
		}
		code, err := ar.api(http.MethodGet, "/register?key="+key, nil, access, secret, &c)
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("list register: HTTP %d", code)
		}
		return c.Data, err
	}
	rs, err := list()
	if err != nil {
		return err
	}
	var r registerObj
	if len(rs) > 0 {
		r = rs[0]
	} else {
		code, err := ar.api(http.MethodPost, "/register", map[string]string{"key": key}, access, secret, &r)
		if err == nil && code != http.StatusCreated {
			err = fmt.Errorf("create register: HTTP %d", code)
		}
		if err != nil {
			return err
		}
	}
	// client.wait_success: until it is no longer transitioning.
	deadline := time.Now().Add(2 * time.Minute)
	for r.Transitioning == "yes" {
		if time.Now().After(deadline) {
			return fmt.Errorf("timeout waiting for register %s", r.ID)
		}
		select {
		case <-ar.ctx.Done():
			return ar.ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
		if _, err := ar.api(http.MethodGet, r.Links["self"], nil, access, secret, &r); err != nil {
			return err
		}
	}
	if r.State != "active" {
		return fmt.Errorf("register %s is %s", r.ID, r.State)
	}
	if rs, err = list(); err != nil {
		return err
	}
	if len(rs) == 0 || rs[0].AccessKey == "" {
		return fmt.Errorf("register %s has no keys", r.ID)
	}
	ar.env["CATTLE_ACCESS_KEY"], ar.env["CATTLE_SECRET_KEY"] = rs[0].AccessKey, rs[0].SecretKey
	if ar.env["CATTLE_AGENT_IP"] == "" {
		ar.env["CATTLE_AGENT_IP"] = ar.env["DETECTED_CATTLE_AGENT_IP"]
	}
	return nil
}

// deleteContainer is run.sh delete_container.
func (ar *agentRun) deleteContainer(name string) error {
	for {
		_, ok, err := ar.d.inspect(ar.ctx, name)
		if err != nil || !ok {
			return err
		}
		ar.infof("Deleting container %s", name)
		_ = ar.d.remove(ar.ctx, name)
	}
}

// agentEnvNames are launch_agent's -e names, passed when set.
var agentEnvNames = []string{"http_proxy", "https_proxy", "NO_PROXY", "no_proxy", "CATTLE_PHYSICAL_HOST_UUID",
	"CATTLE_SCRIPT_DEBUG", "CATTLE_ACCESS_KEY", "CATTLE_SECRET_KEY", "CATTLE_AGENT_IP", "CATTLE_HOST_API_PROXY",
	"CATTLE_SYSTEMD", "CATTLE_URL", "CATTLE_HOST_LABELS", "CATTLE_VOLMGR_ENABLED", "HOST_DOCKER_SOCK"}

// launchAgent is run.sh launch_agent run: rancher-agent-state once (run
// attached, its output part of what launch_agent prints), then
// rancher-agent. It returns what launch_agent prints: the id, after
// "Rancher State" when the state container was made now.
func (ar *agentRun) launchAgent() (string, error) {
	img := ar.env["RANCHER_AGENT_IMAGE"]
	var printed []string
	if _, ok, err := ar.d.inspect(ar.ctx, agentStateCont); err != nil {
		return "", err
	} else if !ok {
		binds := []string{"/var/log/rancher:/var/log/rancher"}
		vols := []string{"/var/lib/cattle"}
		if ar.env["CATTLE_VAR_LIB_WRITABLE"] == "true" {
			binds = append(binds, "/var/lib/rancher:/var/lib/rancher")
		} else {
			vols = append(vols, "/var/lib/rancher")
		}
		id, err := ar.createPulling(containerSpec{Name: agentStateCont, Image: img, Cmd: []string{"state"},
			Binds: binds, Volumes: vols})
		if err != nil {
			return "", err
		}
		if err := ar.d.start(ar.ctx, id); err != nil {
			return "", err
		}
		if _, err := ar.d.wait(ar.ctx, id); err != nil {
			return "", err
		}
		out, _ := ar.d.logs(ar.ctx, id)
		if s := strings.TrimRight(string(out), "\n"); s != "" {
			printed = append(printed, s)
		}
	}
	varLibDocker := "/var/lib/docker"
	if c, ok, err := ar.d.inspect(ar.ctx, agentStateCont); err == nil && ok {
		dir := c.Volumes["/var/lib/cattle"]
		for _, m := range c.Mounts {
			if dir == "" && m.Destination == "/var/lib/cattle" {
				dir = m.Source
			}
		}
		if dir != "" {
			varLibDocker = filepath.Dir(filepath.Dir(filepath.Dir(dir)))
		}
	}
	if v := ar.env["NO_PROXY"]; v != "" {
		ar.env["no_proxy"] = v
	}
	env := []string{"CATTLE_AGENT_PIDNS=host"}
	for _, k := range agentEnvNames {
		if v, ok := ar.lookup(k); ok {
			env = append(env, k+"="+v)
		}
	}
	sock := ar.env["HOST_DOCKER_SOCK"]
	if sock == "" {
		sock = "/var/run/docker.sock"
	}
	spec := containerSpec{Name: agentContainerNm, Image: img, Cmd: []string{"run"}, Env: env, Network: "host",
		PidMode: "host", Privileged: true, Restart: "always", VolumesFrom: []string{agentStateCont},
		Binds: []string{sock + ":/var/run/docker.sock", "/lib/modules:/lib/modules:ro",
			varLibDocker + ":" + varLibDocker, "/proc:/host/proc", "/dev:/host/dev"}}
	id, err := ar.createPulling(spec)
	if err != nil {
		return "", err
	}
	if err := ar.d.start(ar.ctx, id); err != nil {
		return "", err
	}
	return strings.Join(append(printed, id), "\n"), nil
}

// createPulling creates a container, pulling its image first when the
// daemon does not have it (docker run).
func (ar *agentRun) createPulling(c containerSpec) (string, error) {
	id, err := ar.d.createID(ar.ctx, c)
	if errors.Is(err, errImageNotFound) {
		fmt.Fprintf(ar.stderr, "Unable to find image '%s' locally\n", c.Image)
		if err = ar.d.pull(ar.ctx, c.Image, ar.stdout); err == nil {
			id, err = ar.d.createID(ar.ctx, c)
		}
	}
	return id, err
}

// run is run.sh run: rancher-agent's loop. Each turn of run_bootstrap
// checks its keys do not authenticate as the admin, then (in place of the
// python agent) reports the host until a report fails; the loop goes on 5 s
// later.
func (ar *agentRun) run() error {
	if err := ar.deleteContainer(agentUpgradeCont); err != nil {
		return err
	}
	for _, d := range []string{"/var/lib/cattle", agentStateDir} {
		if err := os.MkdirAll(ar.path(d), 0o755); err != nil {
			return err
		}
	}
	ar.env["CATTLE_STATE_DIR"] = agentStateDir
	access, secret := ar.env["CATTLE_ACCESS_KEY"], ar.env["CATTLE_SECRET_KEY"]
	for {
		if code, err := ar.api(http.MethodGet, "/schemas/account", nil, access, secret, nil); err == nil && code < 300 {
			ar.errorf("Please re-register this agent")
			return errExit{1}
		}
		ar.infof("Starting agent for %s", access)
		for {
			if err := ar.report(access, secret); err != nil {
				fmt.Fprintf(ar.stderr, "Failed to report to %s: %v\n", printURL(ar.env["CATTLE_URL"]), err)
				break
			}
			select {
			case <-ar.ctx.Done():
				return ar.ctx.Err()
			case <-time.After(ar.o.ReportEvery):
			}
		}
		select {
		case <-ar.ctx.Done():
			return ar.ctx.Err()
		case <-time.After(5 * time.Second):
		}
	}
}

// uuidFile is the python agent's Config._get_uuid_from_file: the file's
// uuid, or a new one written to it.
func (ar *agentRun) uuidFile(p string) (string, error) {
	if b, err := os.ReadFile(ar.path(p)); err == nil && strings.TrimSpace(string(b)) != "" {
		return strings.TrimSpace(string(b)), nil
	}
	u := newUUID()
	if err := os.MkdirAll(filepath.Dir(ar.path(p)), 0o755); err != nil {
		return "", err
	}
	return u, os.WriteFile(ar.path(p), []byte(u), 0o644)
}

// parseQSL is Python's dict(urlparse.parse_qsl(v)), as Config.labels
// reads CATTLE_HOST_LABELS: '&' or ';' separated, '+' and %XX decoded,
// pairs without '=' or with an empty value dropped, the last value of a
// key kept.
func parseQSL(v string) map[string]string {
	out := map[string]string{}
	for _, part := range strings.FieldsFunc(v, func(r rune) bool { return r == '&' || r == ';' }) {
		k, val, ok := strings.Cut(part, "=")
		if !ok || val == "" {
			continue
		}
		out[unquotePlus(k)] = unquotePlus(val)
	}
	return out
}

func unquotePlus(s string) string {
	s = strings.ReplaceAll(s, "+", " ")
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(n))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// agentIP is DockerConfig.docker_host_ip resolved as the python agent
// does (socket.gethostbyname): an address stays, a name becomes its first
// IPv4 address.
func agentIP(s string) string {
	if s == "" || net.ParseIP(s) != nil {
		return s
	}
	ips, err := net.LookupIP(s)
	if err != nil {
		return s
	}
	for _, ip := range ips {
		if v4 := ip.To4(); v4 != nil {
			return v4.String()
		}
	}
	return s
}

// report publishes one ping answer with the host's resources.
func (ar *agentRun) report(access, secret string) error {
	dockerUUID, err := ar.uuidFile(agentDockerUUID)
	if err != nil {
		return err
	}
	physical, err := ar.uuidFile(agentPhysicalID)
	if err != nil {
		return err
	}
	hostname := ar.env["CATTLE_HOSTNAME"]
	if hostname == "" {
		hostname = ar.o.Hostname
	}
	res := []map[string]any{
		{"type": "physicalHost", "kind": "physicalHost", "uuid": physical, "name": hostname},
		{"type": "host", "kind": "docker", "uuid": dockerUUID, "hostname": hostname, "physicalHostUuid": physical,
			"createLabels": parseQSL(ar.env["CATTLE_HOST_LABELS"]), "labels": map[string]string{}},
	}
	if ip := agentIP(ar.env["CATTLE_AGENT_IP"]); ip != "" {
		res = append(res, map[string]any{"type": "ipAddress", "uuid": ip, "address": ip, "hostUuid": dockerUUID})
	}
	ev := map[string]any{"name": "reply.ping", "data": map[string]any{"resources": res}}
	code, err := ar.api(http.MethodPost, "/publish", ev, access, secret, nil)
	if err == nil && code >= 300 {
		err = fmt.Errorf("HTTP %d", code)
	}
	return err
}
