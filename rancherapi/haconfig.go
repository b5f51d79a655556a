package rancherapi

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// HAConfig is the single haConfig resource (id and type "haConfig").
type HAConfig struct {
	ID          string
	Type        string
	Enabled     bool
	ClusterSize int    // 0 until a script has been generated
	DBHost      string // "localhost" means the embedded database
	DBSize      int64  // filled only for the embedded database; -1 on error
	Actions     map[string]string
	Links       map[string]string
}

type wireHAConfig struct {
	ID          string            `json:"id"`
	Type        string            `json:"type"`
	Enabled     *bool             `json:"enabled"`
	ClusterSize int               `json:"clusterSize"`
	DBHost      string            `json:"dbHost"`
	DBSize      int64             `json:"dbSize"`
	Actions     map[string]string `json:"actions"`
	Links       map[string]string `json:"links"`
}

type wireCollection struct {
	Type       string            `json:"type"`
	Data       []json.RawMessage `json:"data"`
	Pagination *struct {
		Next string `json:"next"`
	} `json:"pagination"`
}

// decodeCollection checks a cattle collection's shape.
func decodeCollection(r *response) (*wireCollection, error) {
	var col wireCollection
	if err := r.decodeJSON(&col); err != nil {
		return nil, err
	}
	if col.Type != "collection" || col.Data == nil {
		return nil, r.protocolError(fmt.Sprintf("want a collection, got type %q", col.Type), nil)
	}
	return &col, nil
}

// decodeHAConfig checks and converts one haConfig object.
func decodeHAConfig(r *response, raw json.RawMessage) (*HAConfig, error) {
	var w wireHAConfig
	if err := json.Unmarshal(raw, &w); err != nil {
		return nil, r.protocolError("haConfig is not an object", err)
	}
	if w.Type != "haConfig" || w.Enabled == nil {
		return nil, r.protocolError(fmt.Sprintf("want a haConfig with an enabled field, got type %q", w.Type), nil)
	}
	return &HAConfig{
		ID: w.ID, Type: w.Type, Enabled: *w.Enabled, ClusterSize: w.ClusterSize,
		DBHost: w.DBHost, DBSize: w.DBSize, Actions: w.Actions, Links: w.Links,
	}, nil
}

// decodeHAConfigs takes data[0] of the haconfigs collection.
func decodeHAConfigs(r *response) (*HAConfig, error) {
	col, err := decodeCollection(r)
	if err != nil {
		return nil, err
	}
	if len(col.Data) == 0 {
		return nil, r.protocolError("haconfigs collection is empty (is this an admin API key on a Rancher 1.0 server?)", nil)
	}
	return decodeHAConfig(r, col.Data[0])
}

// HAConfig reads GET /v1/haconfigs, data[0].
func (c *Client) HAConfig(ctx context.Context) (*HAConfig, error) {
	r, err := c.do(ctx, http.MethodGet, c.endpoint("/v1/haconfigs"), nil)
	if err != nil {
		return nil, err
	}
	return decodeHAConfigs(r)
}

// HAConfigInput is the createscript input. Zero ports and a zero
// ClusterSize select the documented defaults; every port is sent explicitly.
type HAConfigInput struct {
	ClusterSize         int
	HostRegistrationURL string
	Cert, CertChain     string
	Key                 string // sensitive: never logged or printed
	HTTPPort            int    // 80
	HTTPSPort           int    // 443
	PPHTTPPort          int    // 81
	PPHTTPSPort         int    // 444
	RedisPort           int    // 6379
	SwarmPort           int    // 2376
	ZookeeperClientPort int    // 2181
	ZookeeperQuorumPort int    // 2888
	ZookeeperLeaderPort int    // 3888
}

// String prints the input without the private key, so that %v is safe.
func (in HAConfigInput) String() string {
	w := in.wire()
	if w.Key != "" {
		w.Key = "(redacted)"
	}
	b, _ := json.Marshal(w)
	return "HAConfigInput" + string(b)
}

// GoString keeps %#v from printing the key too.
func (in HAConfigInput) GoString() string { return in.String() }

type wireHAConfigInput struct {
	ClusterSize         int    `json:"clusterSize"`
	HostRegistrationURL string `json:"hostRegistrationUrl"`
	Cert                string `json:"cert,omitempty"`
	CertChain           string `json:"certChain,omitempty"`
	Key                 string `json:"key,omitempty"`
	HTTPPort            int    `json:"httpPort"`
	HTTPSPort           int    `json:"httpsPort"`
	PPHTTPPort          int    `json:"ppHttpPort"`
	PPHTTPSPort         int    `json:"ppHttpsPort"`
	RedisPort           int    `json:"redisPort"`
	SwarmPort           int    `json:"swarmPort"`
	ZookeeperClientPort int    `json:"zookeeperClientPort"`
	ZookeeperQuorumPort int    `json:"zookeeperQuorumPort"`
	ZookeeperLeaderPort int    `json:"zookeeperLeaderPort"`
}

func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

func (in HAConfigInput) wire() wireHAConfigInput {
	return wireHAConfigInput{
		ClusterSize:         orDefault(in.ClusterSize, 3),
		HostRegistrationURL: in.HostRegistrationURL,
		Cert:                in.Cert,
		CertChain:           in.CertChain,
		Key:                 in.Key,
		HTTPPort:            orDefault(in.HTTPPort, 80),
		HTTPSPort:           orDefault(in.HTTPSPort, 443),
		PPHTTPPort:          orDefault(in.PPHTTPPort, 81),
		PPHTTPSPort:         orDefault(in.PPHTTPSPort, 444),
		RedisPort:           orDefault(in.RedisPort, 6379),
		SwarmPort:           orDefault(in.SwarmPort, 2376),
		ZookeeperClientPort: orDefault(in.ZookeeperClientPort, 2181),
		ZookeeperQuorumPort: orDefault(in.ZookeeperQuorumPort, 2888),
		ZookeeperLeaderPort: orDefault(in.ZookeeperLeaderPort, 3888),
	}
}

// CreateScript POSTs the input to data[0].actions.createscript and returns
// the rancher-ha.sh it answers with. Each call makes the server generate a
// new encryption key: call it once and give every node the same script.
func (c *Client) CreateScript(ctx context.Context, in HAConfigInput) ([]byte, error) {
	hc, err := c.HAConfig(ctx)
	if err != nil {
		return nil, err
	}
	link, ok := hc.Actions["createscript"]
	if !ok || link == "" {
		return nil, &ProtocolError{Method: http.MethodGet, URL: c.endpoint("/v1/haconfigs"),
			Reason: "haConfig offers no createscript action (not an admin account?)"}
	}
	u, err := c.follow(link)
	if err != nil {
		return nil, &ProtocolError{Method: http.MethodGet, URL: c.endpoint("/v1/haconfigs"), Reason: "bad createscript link", Err: err}
	}
	r, err := c.do(ctx, http.MethodPost, u, in.wire())
	if err != nil {
		return nil, err
	}
	if mt, _, err := mime.ParseMediaType(r.ctype); err != nil || mt != "application/octet-stream" {
		pe := r.protocolError(fmt.Sprintf("createscript answered content type %q, want application/octet-stream", r.ctype), nil)
		if strings.HasPrefix(strings.TrimSpace(string(r.body)), "#!") {
			// A script holds the cluster's encryption key: keep it out.
			pe.Body = "(script content withheld)"
		}
		return nil, pe
	}
	if len(r.body) == 0 {
		return nil, r.protocolError("createscript answered an empty script", nil)
	}
	return r.body, nil
}

// SetEnabled PUTs {"enabled": enabled} to data[0].links.self, then reads
// /v1/haconfigs again until it shows that state, for up to
// Options.SettleTimeout. The PUT's own answer is not trusted: cattle
// v0.159.7 answers it from its settings cache, which it refreshes only
// after the response is written (SettingsUtils.changeSetting defers
// ArchaiusUtil.refresh; HaConfigManager.updateInternal returns
// getHaConfig()), so the answer carries the old value; cattle's own test
// (tests/integration/cattletest/core/test_ha_config.py) re-lists after
// every update.
func (c *Client) SetEnabled(ctx context.Context, enabled bool) (*HAConfig, error) {
	hc, err := c.HAConfig(ctx)
	if err != nil {
		return nil, err
	}
	link, ok := hc.Links["self"]
	if !ok || link == "" {
		return nil, &ProtocolError{Method: http.MethodGet, URL: c.endpoint("/v1/haconfigs"), Reason: "haConfig has no self link"}
	}
	u, err := c.follow(link)
	if err != nil {
		return nil, &ProtocolError{Method: http.MethodGet, URL: c.endpoint("/v1/haconfigs"), Reason: "bad self link", Err: err}
	}
	r, err := c.do(ctx, http.MethodPut, u, map[string]bool{"enabled": enabled})
	if err != nil {
		return nil, err
	}
	var raw json.RawMessage
	if err := r.decodeJSON(&raw); err != nil {
		return nil, err
	}
	if _, err := decodeHAConfig(r, raw); err != nil {
		return nil, err
	}
	return c.waitEnabled(ctx, enabled)
}

// waitEnabled re-reads /v1/haconfigs until enabled has the wanted value,
// for up to c.settle. A read that fails is tried again; the last failure
// or the last value seen is what the error reports.
func (c *Client) waitEnabled(ctx context.Context, enabled bool) (*HAConfig, error) {
	wctx, cancel := context.WithTimeout(ctx, c.settle)
	defer cancel()
	t := time.NewTicker(c.settleEvery)
	defer t.Stop()
	var last error
	for {
		got, err := c.HAConfig(wctx)
		switch {
		case err == nil && got.Enabled == enabled:
			return got, nil
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case err != nil && wctx.Err() == nil:
			last = err
		case err == nil:
			last = &ProtocolError{Method: http.MethodGet, URL: c.endpoint("/v1/haconfigs"),
				Reason: fmt.Sprintf("asked for enabled=%t, the server still says enabled=%t %s after the PUT", enabled, got.Enabled, c.settle)}
		}
		select {
		case <-wctx.Done():
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, last
		case <-t.C:
		}
	}
}

// maxPages bounds pagination so a looping "next" link cannot hang us.
const maxPages = 100

// list reads every page of a collection.
func (c *Client) list(ctx context.Context, u string) ([]json.RawMessage, error) {
	var all []json.RawMessage
	for range maxPages {
		r, err := c.do(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, err
		}
		col, err := decodeCollection(r)
		if err != nil {
			return nil, err
		}
		all = append(all, col.Data...)
		if col.Pagination == nil || col.Pagination.Next == "" {
			return all, nil
		}
		if u, err = c.follow(col.Pagination.Next); err != nil {
			return nil, r.protocolError("bad pagination link", err)
		}
	}
	return nil, &ProtocolError{Method: http.MethodGet, URL: redactURL(u), Reason: fmt.Sprintf("more than %d pages", maxPages)}
}

type wireResource struct {
	ID    string            `json:"id"`
	Type  string            `json:"type"`
	UUID  string            `json:"uuid"`
	State string            `json:"state"`
	Links map[string]string `json:"links"`
}

func gone(state string) bool {
	return state == "removing" || state == "removed" || state == "purging" || state == "purged"
}

// Host is a host of the "System HA" project as the API shows it.
type Host struct {
	ID       string
	Hostname string
	// Addresses are the host's ipAddresses (the first is what the UI
	// shows; for an HA node, its cluster IP, which its agent registered
	// with as CATTLE_AGENT_IP).
	Addresses []string
	// State is the host's state; AgentState the agent connection's,
	// empty while it is null.
	State, AgentState string
	// Labels are the host's labels (CATTLE_HOST_LABELS at registration).
	Labels map[string]string
	// Links and Actions are the resource's, for DeactivateHost,
	// DeleteHost and HostByID.
	Links, Actions map[string]string
}

// Healthy reports whether the host is active and its agent connected:
// agentState null or "active". cattle v0.159.7 creates a host from the
// agent's first ping without an agentState (AgentResourcesMonitorImpl
// createData); only a later agent process (reconnect, disconnect) writes
// one (AgentHostStateUpdate), so a freshly connected host has null there,
// and "reconnecting" or "disconnected" mean its agent is gone. The UI
// (ui v1.0.5 models/host.js) reads it the same way.
func (h Host) Healthy() bool {
	return h.State == "active" && (h.AgentState == "" || h.AgentState == "active")
}

type wireHost struct {
	wireResource
	Hostname   string            `json:"hostname"`
	AgentState *string           `json:"agentState"`
	Labels     map[string]string `json:"labels"`
	Actions    map[string]string `json:"actions"`
	// IPAddresses is embedded by ?include=ipAddresses; nil when the
	// server did not embed it.
	IPAddresses []struct {
		Address string `json:"address"`
	} `json:"ipAddresses"`
}

// ErrNoHAProject: the server has no "System HA" project yet; the first
// master creates it while the cluster forms.
var ErrNoHAProject = errors.New(`no "System HA" project yet`)

// HAHosts lists the hosts of the "System HA" project (uuid "system-ha-..."),
// leaving out removed ones. The project list is read with all=true: cattle
// v0.159.7 lists only the caller's member projects without it
// (ProjectResourceManager.listInternal, AuthDaoImpl.getAccessibleProjects),
// and System HA belongs to cluster-manager's service account, so the
// admin would see a valid list with no System HA in it; the UI asks the
// same way (ui v1.0.5 admin-tab/ha/controller.js, filter all: true).
// Without such a project the error is ErrNoHAProject.
func (c *Client) HAHosts(ctx context.Context) ([]Host, error) {
	projectsURL := c.endpoint("/v1/projects") + "?all=true"
	projects, err := c.list(ctx, projectsURL)
	if err != nil {
		return nil, err
	}
	var project *wireResource
	for _, raw := range projects {
		var p wireResource
		if err := json.Unmarshal(raw, &p); err != nil {
			return nil, &ProtocolError{Method: http.MethodGet, URL: projectsURL, Reason: "project is not an object", Err: err, Body: excerpt(raw)}
		}
		if strings.HasPrefix(p.UUID, "system-ha-") && !gone(p.State) {
			project = &p
			break
		}
	}
	if project == nil {
		return nil, ErrNoHAProject
	}
	return c.projectHosts(ctx, project.ID, project.Links)
}

// projectHosts lists the hosts behind a project's hosts link, leaving out
// removed ones.
func (c *Client) projectHosts(ctx context.Context, id string, links map[string]string) ([]Host, error) {
	link := links["hosts"]
	if link == "" {
		return nil, &ProtocolError{Method: http.MethodGet, URL: redactURL(c.endpoint("/v1/projects/" + id)), Reason: fmt.Sprintf("project %s has no hosts link", id)}
	}
	u, err := c.follow(link)
	if err != nil {
		return nil, &ProtocolError{Method: http.MethodGet, URL: redactURL(link), Reason: "bad hosts link", Err: err}
	}
	// cattle v0.159.7 hosts have no agentIpAddress (it came in v0.170):
	// the address is an ipAddress resource, embedded on request as the UI
	// asks (ui v1.0.5 models/host.js: alwaysInclude ipAddresses).
	u = withQuery(u, "include", "ipAddresses")
	raws, err := c.list(ctx, u)
	if err != nil {
		return nil, err
	}
	hosts := []Host{}
	for _, raw := range raws {
		h, err := c.decodeHost(ctx, http.MethodGet, u, raw)
		if err != nil {
			return nil, err
		}
		if !gone(h.State) {
			hosts = append(hosts, *h)
		}
	}
	return hosts, nil
}

// decodeHost converts one host, following its ipAddresses link when they
// were not embedded.
func (c *Client) decodeHost(ctx context.Context, method, u string, raw json.RawMessage) (*Host, error) {
	var h wireHost
	if err := json.Unmarshal(raw, &h); err != nil {
		return nil, &ProtocolError{Method: method, URL: redactURL(u), Reason: "host is not an object", Err: err, Body: excerpt(raw)}
	}
	out := &Host{ID: h.ID, Hostname: h.Hostname, State: h.State, Labels: h.Labels, Links: h.Links, Actions: h.Actions}
	if h.AgentState != nil {
		out.AgentState = *h.AgentState
	}
	if h.IPAddresses != nil {
		for _, a := range h.IPAddresses {
			out.Addresses = append(out.Addresses, a.Address)
		}
	} else if l := h.Links["ipAddresses"]; l != "" && !gone(h.State) {
		// Not embedded: follow the host's link.
		var err error
		if out.Addresses, err = c.addresses(ctx, l); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// addresses lists the address of every ipAddress behind link.
func (c *Client) addresses(ctx context.Context, link string) ([]string, error) {
	u, err := c.follow(link)
	if err != nil {
		return nil, &ProtocolError{Method: http.MethodGet, URL: redactURL(link), Reason: "bad ipAddresses link", Err: err}
	}
	raws, err := c.list(ctx, u)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, raw := range raws {
		var ip struct {
			Address string `json:"address"`
			State   string `json:"state"`
		}
		if err := json.Unmarshal(raw, &ip); err != nil {
			return nil, &ProtocolError{Method: http.MethodGet, URL: redactURL(u), Reason: "ipAddress is not an object", Err: err, Body: excerpt(raw)}
		}
		if !gone(ip.State) {
			out = append(out, ip.Address)
		}
	}
	return out, nil
}

// withQuery adds key=value to a URL's query.
func withQuery(raw, key, value string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

// ErrNoClusterCA is matched (errors.Is) by CAChain's error when the server
// has no System HA certificate yet: the handler does not answer (404)
// until the first master has created it.
var ErrNoClusterCA = errors.New("the server has no System HA certificate yet")

// CAChain fetches GET /v1/scripts/ca.crt, the chain of the System HA
// certificate (cattle's CertificateDao.getPublicCA, served by
// HostApiPublicCAScriptHandler): the CA hosts must trust, whose first
// certificate registration commands pin in CA_FINGERPRINT
// (RegistrationTokenOutputFilter). The v1.0.1 handler writes the chain
// twice, so the answer may hold it twice or with the second copy cut off
// at Content-Length: the chain ends where its first certificate comes
// again or where a block does not decode. The chain is returned as the
// server holds it (the bytes cluster-manager writes to a node's ca.crt).
func (c *Client) CAChain(ctx context.Context) ([]byte, error) {
	r, err := c.do(ctx, http.MethodGet, c.endpoint("/v1/scripts/ca.crt"), nil)
	if err != nil {
		var ae *APIError
		if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
			return nil, fmt.Errorf("%w: %w", ErrNoClusterCA, err)
		}
		return nil, err
	}
	return caChain(r)
}

func caChain(r *response) ([]byte, error) {
	body := r.body
	if n := len(body); n > 0 && n%2 == 0 && bytes.Equal(body[:n/2], body[n/2:]) {
		// Both copies whole: a chain without a final line break written
		// twice would not decode where the copies meet.
		body = body[:n/2]
	}
	var first []byte
	end := 0 // the chain is body[:end], as the server holds it
	for rest := body; ; {
		blk, next := pem.Decode(rest)
		if blk == nil {
			break
		}
		rest = next
		if first != nil && (blk.Type != "CERTIFICATE" || bytes.Equal(blk.Bytes, first)) {
			break // the second copy of the double write, or what follows the chain
		}
		if blk.Type != "CERTIFICATE" {
			return nil, r.protocolError(fmt.Sprintf("ca.crt holds a %q PEM block, want CERTIFICATE", blk.Type), nil)
		}
		if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
			if first != nil {
				break
			}
			return nil, r.protocolError("ca.crt is not a valid certificate", err)
		}
		if first == nil {
			first = blk.Bytes
		}
		end = len(body) - len(rest)
	}
	if first == nil {
		return nil, r.protocolError("no PEM block in ca.crt", nil)
	}
	return bytes.Clone(body[:end]), nil
}
