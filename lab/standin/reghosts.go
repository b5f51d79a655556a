package standin

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Hosts that join the cluster: an agent registers (POST /v1/register with
// a registration token, register.py), then reports its host through the
// ping replies it publishes (POST /v1/publish); the server creates the
// host on the first report (AgentResourcesMonitorImpl.setHosts) in the
// token's account and keeps it while the agent answers.

// Ping timing, cattle v0.159.7 agent-server/defaults.properties lines
// 13-16 (PingMonitorImpl): a ping every task.agent.ping.schedule seconds,
// failed after agent.ping.timeout.seconds; after
// agent.ping.reconnect.after.failed.count failures in a row the agent is
// reconnected (agent.reconnect: start active, transitioning
// "reconnecting"), which AgentHostStateUpdate copies to every host's
// agentState. They are settings, so a test can shorten them.
const (
	settingPingSchedule = "task.agent.ping.schedule"
	settingPingTimeout  = "agent.ping.timeout.seconds"
	settingPingFailures = "agent.ping.reconnect.after.failed.count"
)

// reconnectAfter is how long after an agent's last answer its hosts show
// agentState "reconnecting": the failures pile up one schedule apart, the
// first for the ping a schedule after the last answer, each timeout after
// it was sent.
func (a *API) reconnectAfter(ctx context.Context) time.Duration {
	sched := a.intSetting(ctx, settingPingSchedule, 5)
	timeout := a.intSetting(ctx, settingPingTimeout, 15)
	fails := a.intSetting(ctx, settingPingFailures, 6)
	return time.Duration(fails*sched+timeout) * time.Second
}

func (a *API) intSetting(ctx context.Context, name string, def int) int {
	v, ok, err := a.Store.Setting(ctx, name)
	if err != nil || !ok {
		return def
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 {
		return def
	}
	return n
}

// hostAgentState is the agentState the agent's hosts show at now: null
// until the agent had to be reconnected (the host is created after the
// agent was activated, and only agent processes set it), "reconnecting"
// while it does not answer, "active" once it answered again;
// "deactivating"/"inactive" once the host was removed (HostRemove
// deactivates the agent).
func hostAgentState(ag AgentRecord, now time.Time, reconnect time.Duration) *string {
	s := ag.HostAgentState
	switch {
	case ag.State == "inactive" && now.UnixMilli() < ag.StateUntil:
		s = "deactivating"
	case ag.State == "inactive":
		s = "inactive"
	case ag.LastPing > 0 && now.Sub(time.UnixMilli(ag.LastPing)) > reconnect:
		s = "reconnecting"
	}
	if s == "" {
		return nil
	}
	return &s
}

// regHost is a registered host as a project reads it (cattle v0.159.7
// schema/base/host.json, user-auth.json host.*; no agentIpAddress, which
// came in v0.170).
type regHost struct {
	ID                    string            `json:"id"`
	Type                  string            `json:"type"`
	BaseType              string            `json:"baseType"`
	Kind                  string            `json:"kind"`
	Name                  *string           `json:"name"`
	Description           *string           `json:"description"`
	Hostname              string            `json:"hostname"`
	State                 string            `json:"state"`
	AgentState            *string           `json:"agentState"`
	AccountID             string            `json:"accountId"`
	AgentID               string            `json:"agentId"`
	ComputeTotal          int64             `json:"computeTotal"`
	Created               string            `json:"created"`
	CreatedTS             int64             `json:"createdTS"`
	Info                  any               `json:"info"`
	Labels                map[string]string `json:"labels"`
	PhysicalHostID        *string           `json:"physicalHostId"`
	PublicEndpoints       any               `json:"publicEndpoints"`
	Removed               *string           `json:"removed"`
	RemoveTime            *string           `json:"removeTime"`
	Transitioning         string            `json:"transitioning"`
	TransitioningMessage  *string           `json:"transitioningMessage"`
	TransitioningProgress *int              `json:"transitioningProgress"`
	UUID                  string            `json:"uuid"`
	Links                 map[string]string `json:"links"`
	Actions               map[string]string `json:"actions"`
	IPAddresses           []ipAddress       `json:"ipAddresses,omitempty"`
}

// computeTotal is schema/defaults/host.json's default.
const computeTotal = 1000000

func regHostID(id int64) string { return "1h" + strconv.FormatInt(id, 10) }

// regHostIP is the host's ipAddress resource (id prefix "1ia": gdapi
// TypeIdFormatter.getShortType, "i" plus the capitals of ipAddress).
func regHostIP(r *http.Request, h HostRecord) ipAddress {
	id := "1ia" + strconv.FormatInt(h.ID, 10)
	return ipAddress{ID: id, Type: "ipAddress", BaseType: "ipAddress", Kind: "docker", Address: h.IP, State: "active",
		Links: map[string]string{"self": linkBase(r) + "/ipaddresses/" + id}, Actions: map[string]string{}}
}

func (a *API) regHostView(r *http.Request, h HostRecord, ag AgentRecord, reconnect time.Duration) regHost {
	now := a.now()
	id := regHostID(h.ID)
	self := linkBase(r) + "/hosts/" + id
	st, tr := h.Life.current(now)
	labels := h.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	v := regHost{
		ID: id, Type: "host", BaseType: "host", Kind: "docker", Hostname: h.Hostname, State: st,
		AgentState: hostAgentState(ag, now, reconnect), AccountID: h.AccountID, AgentID: "1a" + strconv.FormatInt(h.AgentID, 10),
		ComputeTotal: computeTotal, Created: isoTime(h.Created), CreatedTS: h.Created, Labels: labels,
		Removed: isoTimePtr(h.Life.Removed), RemoveTime: isoTimePtr(h.Life.RemoveTime),
		Transitioning: transitioning(tr), UUID: h.UUID,
		Links: map[string]string{
			"self": self, "account": linkBase(r) + "/accounts/" + h.AccountID,
			"ipAddresses": self + "/ipaddresses",
		},
		Actions: map[string]string{},
	}
	if st == "purged" {
		v.Labels = map[string]string{}
	}
	for _, act := range append(h.Life.actions(now), hostExtraActions(st)...) {
		v.Actions[act] = self + "/?action=" + act
	}
	if included(r, "ipAddresses") && h.IP != "" {
		v.IPAddresses = []ipAddress{regHostIP(r, h)}
	}
	return v
}

// hostExtraActions: host.json.d (docker/api) adds dockersocket in states
// active, inactive, activating, deactivating.
func hostExtraActions(state string) []string {
	switch state {
	case "active", "inactive", "activating", "deactivating":
		return []string{"dockersocket"}
	}
	return nil
}

// registered is the request's view of the registered hosts.
type registered struct {
	hosts     []HostRecord
	agents    map[int64]AgentRecord
	reconnect time.Duration
}

func (a *API) loadRegistered(ctx context.Context) (registered, error) {
	rg := registered{agents: map[int64]AgentRecord{}, reconnect: a.reconnectAfter(ctx)}
	if a.Registry == nil {
		return rg, nil
	}
	hs, err := a.Registry.Hosts(ctx)
	if err != nil {
		return rg, err
	}
	ags, err := a.Registry.Agents(ctx)
	if err != nil {
		return rg, err
	}
	for _, ag := range ags {
		rg.agents[ag.ID] = ag
	}
	rg.hosts = hs
	return rg, nil
}

// hostsRoute serves /v1/hosts[/<id>[/ipaddresses]] in the request's scope:
// the hosts agents reported, System HA's (the nodes' agents) among them;
// the admin without a project sees every one.
func (a *API) hostsRoute(w http.ResponseWriter, r *http.Request, rest []string) {
	sc, ok := a.scope(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	rg, err := a.loadRegistered(ctx)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	if len(rest) == 0 {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			// host's collectionMethods are GET only.
			a.writeError(w, r, http.StatusMethodNotAllowed, "MethodNotAllowed", "")
			return
		}
		var items []any
		now := a.now()
		for _, h := range rg.hosts {
			if sc.sees(h.AccountID) && h.Life.listed(now) {
				items = append(items, a.regHostView(r, h, rg.agents[h.AgentID], rg.reconnect))
			}
		}
		a.writeList(w, r, "host", "/hosts", items, hostFilters, nil)
		return
	}
	id := rest[0]
	var h HostRecord
	found := false
	if n, ok := idNumber(id, "1h"); ok {
		for _, x := range rg.hosts {
			if x.ID == n && sc.sees(x.AccountID) {
				h, found = x, true
			}
		}
	}
	if !found {
		a.writeError(w, r, http.StatusNotFound, "NotFound", "")
		return
	}
	ag := rg.agents[h.AgentID]
	switch {
	case len(rest) == 2 && rest[1] == "ipaddresses" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		ips := []ipAddress{}
		if h.IP != "" {
			ips = append(ips, regHostIP(r, h))
		}
		a.writeJSON(w, http.StatusOK, a.collectionAt(r, "ipAddress", linkBase(r)+"/hosts/"+id+"/ipaddresses", ips))
	case len(rest) != 1:
		a.writeError(w, r, http.StatusNotFound, "NotFound", "")
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		a.writeJSON(w, http.StatusOK, a.regHostView(r, h, ag, rg.reconnect))
	case r.Method == http.MethodPost && r.URL.Query().Get("action") != "":
		a.hostAction(w, r, h, ag, rg.reconnect, strings.ToLower(r.URL.Query().Get("action")))
	case r.Method == http.MethodPut:
		a.updateHostLabels(w, r, h, ag, rg.reconnect)
	case r.Method == http.MethodDelete:
		// AbstractObjectResourceManager.deleteInternal: the remove process
		// refusing the state (ProcessCancelException) is a 405.
		next, err := h.Life.run("remove", a.now(), a.transition())
		if errors.Is(err, errActionNotAvailable) {
			a.writeError(w, r, http.StatusMethodNotAllowed, "MethodNotAllowed", "")
			return
		}
		if err != nil {
			a.internal(w, r, err)
			return
		}
		h, ag, err = a.setHostLife(ctx, h, ag, next)
		if err != nil {
			a.internal(w, r, err)
			return
		}
		a.writeJSON(w, http.StatusOK, a.regHostView(r, h, ag, rg.reconnect))
	default:
		a.writeError(w, r, http.StatusMethodNotAllowed, "MethodNotAllowed", "")
	}
}

// updateHostLabels serves PUT of a host: a user may update its labels
// (cattle v0.159.7 schema/user/user-auth.json "host.labels": "ru"); the
// host.update process sets exactly the given map: new and changed labels
// are created, the others' mappings removed (process/host/
// HostCreateUpdate.java). Other fields are left as they are; the answer is
// the host as it now is.
func (a *API) updateHostLabels(w http.ResponseWriter, r *http.Request, h HostRecord, ag AgentRecord, reconnect time.Duration) {
	var body map[string]json.RawMessage
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		a.writeError(w, r, http.StatusUnprocessableEntity, codeInvalidFormat, "")
		return
	}
	if raw, ok := body["labels"]; ok {
		var labels map[string]string
		if err := json.Unmarshal(raw, &labels); err != nil {
			a.writeValidation(w, r, &ValidationError{Code: codeInvalidFormat, Field: "labels"})
			return
		}
		if labels == nil {
			labels = map[string]string{}
		}
		if err := a.Registry.ReportHost(r.Context(), h.ID, h.Hostname, h.IP, labels); err != nil {
			a.internal(w, r, err)
			return
		}
		h.Labels = labels
	}
	a.writeJSON(w, http.StatusOK, a.regHostView(r, h, ag, reconnect))
}

// activeHAHosts counts the hosts of System HA in state active, as
// cluster-manager's WaitForHosts does (v0.1.4 rancher/rancher.go: a host
// list filtered on state=active; agentState is not looked at, so a dead
// node's host, "reconnecting", still counts).
func (a *API) activeHAHosts(ctx context.Context) (int, error) {
	rg, err := a.loadRegistered(ctx)
	if err != nil {
		return 0, err
	}
	now, n := a.now(), 0
	for _, h := range rg.hosts {
		if st, _ := h.Life.current(now); h.AccountID == systemHAProjectID && st == "active" {
			n++
		}
	}
	return n, nil
}

// hostAction runs a host process; the answer is 202 with the host in its
// transitioning state (resourceActionInternal).
func (a *API) hostAction(w http.ResponseWriter, r *http.Request, h HostRecord, ag AgentRecord, reconnect time.Duration, act string) {
	if act == "dockersocket" {
		st, _ := h.Life.current(a.now())
		if hostExtraActions(st) == nil {
			a.writeValidation(w, r, &ValidationError{Code: "ActionNotAvailable", Field: "action"})
			return
		}
		a.writeError(w, r, http.StatusNotFound, "NotFound", "dockersocket is not modelled by the stand-in")
		return
	}
	next, err := h.Life.run(act, a.now(), a.transition())
	if a.actionFailed(w, r, err) {
		return
	}
	h, ag, err = a.setHostLife(r.Context(), h, ag, next)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	a.writeJSON(w, http.StatusAccepted, a.regHostView(r, h, ag, reconnect))
}

// setHostLife stores a host's new lifecycle; removing it deactivates its
// agent (cattle v0.159.7 HostRemove: agent.deactivate, which has no
// delegate to agent.remove in spring-process-context.xml line 242, so the
// register object and the agent's keys stay).
func (a *API) setHostLife(ctx context.Context, h HostRecord, ag AgentRecord, next lifecycle) (HostRecord, AgentRecord, error) {
	if err := a.Registry.SetHostLife(ctx, h.ID, next); err != nil {
		return h, ag, err
	}
	if next.Trans == "removing" && ag.ID != 0 && ag.State != "inactive" {
		ag.State, ag.StateUntil = "inactive", a.now().Add(a.transition()).UnixMilli()
		if err := a.Registry.SetAgentState(ctx, ag.ID, ag.State, ag.StateUntil); err != nil {
			return h, ag, err
		}
	}
	h.Life = next
	return h, ag, nil
}

// registerView is a register object (genericObject kind register,
// schema/base/register.json). accessKey and secretKey show only while it is
// active and the request's key parameter is its key (RegisterOutputFilter).
type registerView struct {
	ID                    string            `json:"id"`
	Type                  string            `json:"type"`
	BaseType              string            `json:"baseType"`
	Kind                  string            `json:"kind"`
	Name                  *string           `json:"name"`
	Key                   string            `json:"key,omitempty"`
	AccessKey             string            `json:"accessKey,omitempty"`
	SecretKey             string            `json:"secretKey,omitempty"`
	AccountID             string            `json:"accountId"`
	Created               string            `json:"created"`
	CreatedTS             int64             `json:"createdTS"`
	State                 string            `json:"state"`
	Transitioning         string            `json:"transitioning"`
	TransitioningMessage  *string           `json:"transitioningMessage"`
	TransitioningProgress *int              `json:"transitioningProgress"`
	UUID                  string            `json:"uuid"`
	Links                 map[string]string `json:"links"`
	Actions               map[string]string `json:"actions"`
}

func (a *API) registerView(r *http.Request, ag AgentRecord) registerView {
	id := "1go" + strconv.FormatInt(ag.ID, 10)
	st, tr := ag.RegLife.current(a.now())
	v := registerView{ID: id, Type: "register", BaseType: "genericObject", Kind: "register", AccountID: ag.AccountID,
		Created: isoTime(ag.Created), CreatedTS: ag.Created, State: st, Transitioning: transitioning(tr), UUID: ag.UUID,
		Links: map[string]string{"self": linkBase(r) + "/register/" + id}, Actions: map[string]string{}}
	if key := r.URL.Query().Get("key"); st == "active" && key == ag.Key {
		v.Key, v.AccessKey, v.SecretKey = ag.Key, ag.Access, ag.Secret
	}
	return v
}

// register serves /v1/register (the register schema's plural name): what
// register.py lists by key and creates.
func (a *API) register(w http.ResponseWriter, r *http.Request, rest []string) {
	sc, ok := a.scope(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	ags, err := a.Registry.Agents(ctx)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	switch {
	case len(rest) == 0 && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		key := r.URL.Query().Get("key")
		items := []any{}
		for _, ag := range ags {
			if sc.sees(ag.AccountID) && (key == "" || key == ag.Key) {
				items = append(items, a.registerView(r, ag))
			}
		}
		a.writeJSON(w, http.StatusOK, a.collectionAt(r, "register", linkBase(r)+"/register", items))
	case len(rest) == 0 && r.Method == http.MethodPost:
		var in struct {
			Key string `json:"key"`
		}
		_ = json.NewDecoder(r.Body).Decode(&in)
		if in.Key == "" {
			a.writeValidation(w, r, &ValidationError{Code: codeMissingRequired, Field: "key"})
			return
		}
		owner := sc.account
		if sc.all {
			owner = adminAccountID
		}
		access, secret, err := generateKeys()
		if err != nil {
			a.internal(w, r, err)
			return
		}
		now := a.now()
		ag := AgentRecord{Key: in.Key, AccountID: owner, Access: access, Secret: secret, UUID: newUUID(),
			Created: now.UnixMilli(), RegLife: newLifecycle(now, a.transition()), State: "active"}
		if _, err := a.Registry.AddAgent(ctx, &ag); err != nil {
			a.internal(w, r, err)
			return
		}
		a.writeJSON(w, http.StatusCreated, a.registerView(r, ag))
	case len(rest) == 1 && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		n, _ := idNumber(rest[0], "1go")
		for _, ag := range ags {
			if ag.ID == n && sc.sees(ag.AccountID) {
				a.writeJSON(w, http.StatusOK, a.registerView(r, ag))
				return
			}
		}
		a.writeError(w, r, http.StatusNotFound, "NotFound", "")
	default:
		a.writeError(w, r, http.StatusMethodNotAllowed, "MethodNotAllowed", "")
	}
}

// pingEvent is the stand-in agent's report: the reply the python agent
// publishes to a ping with resources (cattle python-agent
// plugins/docker/compute.py _add_resources): a physicalHost, a host (uuid
// from /var/lib/rancher/state/.docker_uuid, hostname, createLabels from
// CATTLE_HOST_LABELS, labels) and an ipAddress (CATTLE_AGENT_IP) of that
// host.
type pingEvent struct {
	Name string `json:"name"`
	Data struct {
		Resources []pingResource `json:"resources"`
	} `json:"data"`
}

type pingResource struct {
	Type         string            `json:"type"`
	UUID         string            `json:"uuid"`
	Hostname     string            `json:"hostname,omitempty"`
	Labels       map[string]string `json:"labels,omitempty"`
	CreateLabels map[string]string `json:"createLabels,omitempty"`
	Address      string            `json:"address,omitempty"`
	HostUUID     string            `json:"hostUuid,omitempty"`
}

// publish serves POST /v1/publish for an agent: its report is a ping
// answer. An agent whose host was removed is inactive: its reports change
// nothing (it is not pinged any more), so re-running the registration with
// the old /var/lib/rancher/state brings no host back.
func (a *API) publish(w http.ResponseWriter, r *http.Request) {
	caller := callerOf(r)
	if r.Method != http.MethodPost {
		a.writeError(w, r, http.StatusMethodNotAllowed, "MethodNotAllowed", "")
		return
	}
	var ev pingEvent
	if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
		a.writeError(w, r, http.StatusUnprocessableEntity, codeInvalidFormat, "")
		return
	}
	ctx := r.Context()
	ags, err := a.Registry.Agents(ctx)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	var ag AgentRecord
	for _, x := range ags {
		if x.ID == caller.AgentID {
			ag = x
		}
	}
	if ag.ID == 0 {
		a.writeError(w, r, http.StatusNotFound, "NotFound", "")
		return
	}
	if ag.State == "active" {
		if err := a.recordPing(ctx, ag, ev); err != nil {
			a.internal(w, r, err)
			return
		}
	}
	a.writeJSON(w, http.StatusCreated, map[string]any{"type": "publish", "name": ev.Name,
		"links": map[string]string{}, "actions": map[string]string{}})
}

func (a *API) recordPing(ctx context.Context, ag AgentRecord, ev pingEvent) error {
	now := a.now()
	has := ag.HostAgentState
	if ag.LastPing > 0 && now.Sub(time.UnixMilli(ag.LastPing)) > a.reconnectAfter(ctx) {
		has = "active" // agent.reconnect done
	}
	if err := a.Registry.PingAgent(ctx, ag.ID, now.UnixMilli(), has); err != nil {
		return err
	}
	ips := map[string]string{}
	for _, res := range ev.Data.Resources {
		if res.Type == "ipAddress" && res.HostUUID != "" {
			ips[res.HostUUID] = res.Address
		}
	}
	for _, res := range ev.Data.Resources {
		if res.Type != "host" || res.UUID == "" {
			continue
		}
		// A new host takes labels and createLabels; an existing one only
		// merges labels (UPDATABLE_HOST_FIELDS), so CATTLE_HOST_LABELS
		// counts only when the host is first created.
		labels := maps.Clone(res.Labels)
		if labels == nil {
			labels = map[string]string{}
		}
		maps.Copy(labels, res.CreateLabels)
		h := HostRecord{AgentID: ag.ID, ReportedUUID: res.UUID, AccountID: ag.AccountID, UUID: newUUID(),
			Hostname: res.Hostname, Labels: labels, IP: ips[res.UUID], Created: now.UnixMilli(),
			Life: newLifecycle(now, a.transition())}
		existed, err := a.Registry.AddHost(ctx, &h)
		if err != nil || !existed {
			return err
		}
		hostname, ip, merged := h.Hostname, h.IP, maps.Clone(h.Labels)
		if merged == nil {
			merged = map[string]string{}
		}
		if strings.TrimSpace(res.Hostname) != "" {
			hostname = res.Hostname
		}
		if v := ips[res.UUID]; v != "" {
			ip = v
		}
		maps.Copy(merged, res.Labels)
		if hostname != h.Hostname || ip != h.IP || !maps.Equal(merged, h.Labels) {
			if err := a.Registry.ReportHost(ctx, h.ID, hostname, ip, merged); err != nil {
				return err
			}
		}
	}
	return nil
}
