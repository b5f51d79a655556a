//go:build lab

package prooftest

import (
	"bytes"
	"context"
	"crypto/tls"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/haplan/haplan/lab"
)

// sshArgs are OpenSSH client options an operator would use against the lab:
// the lab's key only, its known_hosts only, strict host-key checking, never
// a prompt, and no user or system ssh_config.
func sshArgs(l *lab.Lab, knownHosts, ip, command string) []string {
	return []string{
		"-F", "/dev/null",
		"-o", "StrictHostKeyChecking=yes",
		"-o", "UserKnownHostsFile=" + knownHosts,
		"-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "BatchMode=yes",
		"-o", "IdentitiesOnly=yes",
		"-o", "ConnectTimeout=10",
		"-o", "LogLevel=ERROR",
		"-i", l.SSH.IdentityFile,
		"-p", strconv.Itoa(l.SSH.Port),
		l.SSH.User + "@" + ip,
		command,
	}
}

// sshRun runs command on the host at ip with OpenSSH's client and returns
// its standard output. stdin (which may hold secrets) is never part of an
// error; standard error is.
func sshRun(ctx context.Context, l *lab.Lab, knownHosts, ip string, stdin []byte, command string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "ssh", sshArgs(l, knownHosts, ip, command)...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("ssh %s %q: %w: %s", ip, command, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// node is one server node as the test drives it.
type node struct {
	name, ip string
}

// proof holds what the steps share.
type proof struct {
	t     *testing.T
	l     *lab.Lab
	nodes []node
	admin *sql.DB
	http  *http.Client
}

// ssh runs command on n over OpenSSH with the lab's known_hosts, failing
// the test on error.
func (p *proof) ssh(ctx context.Context, n node, stdin []byte, command string) string {
	p.t.Helper()
	out, err := sshRun(ctx, p.l, p.l.SSH.KnownHostsFile, n.ip, stdin, command)
	if err != nil {
		p.t.Fatalf("%s: %v", n.name, err)
	}
	return string(out)
}

// sshQuiet is ssh without failing the test (for polling and diagnostics).
func (p *proof) sshQuiet(ctx context.Context, n node, command string) (string, error) {
	out, err := sshRun(ctx, p.l, p.l.SSH.KnownHostsFile, n.ip, nil, command)
	return string(out), err
}

// parallel runs f on every node at the same time and returns the errors
// by node name.
func parallel(ns []node, f func(n node) error) map[string]error {
	var mu sync.Mutex
	errs := map[string]error{}
	var wg sync.WaitGroup
	for _, n := range ns {
		wg.Go(func() {
			if err := f(n); err != nil {
				mu.Lock()
				errs[n.name] = err
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errs
}

// openAdmin connects to MariaDB as the lab's admin from this machine.
// InterpolateParams lets CREATE USER ... IDENTIFIED BY take the password
// as a parameter instead of being formatted into the statement by hand.
func openAdmin(l *lab.Lab) (*sql.DB, error) {
	cfg, err := l.AdminConfig()
	if err != nil {
		return nil, err
	}
	cfg.InterpolateParams = true
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("admin connector: %w", err)
	}
	return sql.OpenDB(conn), nil
}

// newHTTPClient talks straight to the lab (no proxy from the environment),
// without keep-alives since servers come and go, with tlsc for HTTPS.
func newHTTPClient(tlsc *tls.Config) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			Proxy:             nil,
			DialContext:       (&net.Dialer{Timeout: 3 * time.Second}).DialContext,
			TLSClientConfig:   tlsc,
			DisableKeepAlives: true,
		},
	}
}

// do sends a request with an optional JSON body and returns the response
// with its body read.
func do(ctx context.Context, c *http.Client, method, url string, body any) (*http.Response, []byte, error) {
	return doAs(ctx, c, "", "", method, url, body)
}

// doAs is do with an API key pair over HTTP Basic (none when access is "").
func doAs(ctx context.Context, c *http.Client, access, secret, method, url string, body any) (*http.Response, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if access != "" {
		req.SetBasicAuth(access, secret)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp, nil, fmt.Errorf("%s %s: read body: %w", method, url, err)
	}
	return resp, b, nil
}

// getJSON GETs url and decodes a 200 response into v.
func getJSON(ctx context.Context, c *http.Client, url string, v any) error {
	resp, b, err := do(ctx, c, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, bytes.TrimSpace(b))
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("GET %s: decode: %w", url, err)
	}
	return nil
}

// ping is GET url+"/ping" == "pong".
func ping(ctx context.Context, c *http.Client, base string) error {
	resp, b, err := do(ctx, c, http.MethodGet, base+"/ping", nil)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(b)) != "pong" {
		return fmt.Errorf("GET %s/ping: %s %q", base, resp.Status, b)
	}
	return nil
}

// haConfig is the fields of the v1 haConfig resource the procedure reads.
type haConfig struct {
	ID          string            `json:"id"`
	Type        string            `json:"type"`
	Enabled     bool              `json:"enabled"`
	ClusterSize int               `json:"clusterSize"`
	DBHost      string            `json:"dbHost"`
	Actions     map[string]string `json:"actions"`
	Links       map[string]string `json:"links"`
}

// getHAConfig is GET /v1/haconfigs, data[0].
func getHAConfig(ctx context.Context, c *http.Client, base string) (haConfig, error) {
	var coll struct {
		Data []haConfig `json:"data"`
	}
	if err := getJSON(ctx, c, base+"/v1/haconfigs", &coll); err != nil {
		return haConfig{}, err
	}
	if len(coll.Data) != 1 {
		return haConfig{}, fmt.Errorf("GET %s/v1/haconfigs: %d haConfig resources, want 1", base, len(coll.Data))
	}
	return coll.Data[0], nil
}

// errNoSystemHA: the "System HA" project does not exist (yet).
var errNoSystemHA = errors.New("no project with uuid system-ha-*")

// activeHAHosts reads the hosts view the way the UI's Admin->HA page does
// (ui v1.0.5 admin-tab/ha/controller.js: projects with filter all=true,
// the one whose uuid starts with system-ha-, its hosts link, state ==
// active). It returns the active hosts' agent IPs.
func activeHAHosts(ctx context.Context, c *http.Client, base string) ([]string, error) {
	return haHosts(ctx, c, base+"/v1/projects?all=true")
}

// memberProjectsHaveSystemHA reports whether GET /v1/projects, without
// all=true, lists System HA: the real server lists only the caller's member
// projects there (cattle v0.159.7 ProjectResourceManager.listInternal), and
// System HA belongs to cluster-manager's service account.
func memberProjectsHaveSystemHA(ctx context.Context, c *http.Client, base string) (bool, error) {
	_, err := haHosts(ctx, c, base+"/v1/projects")
	if errors.Is(err, errNoSystemHA) {
		return false, nil
	}
	return err == nil, err
}

func haHosts(ctx context.Context, c *http.Client, projectsURL string) ([]string, error) {
	var projects struct {
		Data []struct {
			UUID  string            `json:"uuid"`
			Links map[string]string `json:"links"`
		} `json:"data"`
	}
	if err := getJSON(ctx, c, projectsURL, &projects); err != nil {
		return nil, err
	}
	for _, pr := range projects.Data {
		if !strings.HasPrefix(pr.UUID, "system-ha-") {
			continue
		}
		// A v0.159.7 host has no agentIpAddress (cattle cd03586e6, v0.170,
		// added it): its address is the first of its ipAddresses, which the
		// UI embeds with include=ipAddresses (ui v1.0.5 models/host.js).
		var hosts struct {
			Data []struct {
				State       string          `json:"state"`
				AgentState  *string         `json:"agentState"`
				Legacy      json.RawMessage `json:"agentIpAddress"`
				IPAddresses []struct {
					Address string `json:"address"`
				} `json:"ipAddresses"`
			} `json:"data"`
		}
		if pr.Links["hosts"] == "" {
			return nil, fmt.Errorf("project %s has no hosts link", pr.UUID)
		}
		if err := getJSON(ctx, c, pr.Links["hosts"]+"?include=ipAddresses", &hosts); err != nil {
			return nil, err
		}
		active := []string{}
		for _, h := range hosts.Data {
			if h.Legacy != nil {
				return nil, fmt.Errorf("a host has agentIpAddress, which cattle v0.159.7 does not have")
			}
			// A node whose agent stopped reporting keeps its host, its
			// agentState "reconnecting".
			connected := h.AgentState == nil || *h.AgentState == "active"
			if h.State == "active" && connected && len(h.IPAddresses) > 0 {
				active = append(active, h.IPAddresses[0].Address)
			}
		}
		return active, nil
	}
	return nil, errNoSystemHA
}

// listening reports whether something accepts TCP connections on addr.
func listening(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// member is one row of the cluster table.
type member struct {
	ID            int64
	Name, IP      string
	AssignedIndex int
}

func clusterRows(ctx context.Context, db *sql.DB, dbName string) ([]member, error) {
	rows, err := db.QueryContext(ctx, "SELECT id, COALESCE(name,''), COALESCE(ip_address,''), assigned_index FROM `"+dbName+"`.cluster ORDER BY id")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []member
	for rows.Next() {
		var m member
		if err := rows.Scan(&m.ID, &m.Name, &m.IP, &m.AssignedIndex); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}
