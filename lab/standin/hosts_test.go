package standin

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func basic(user, pass string) map[string]string {
	return map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))}
}

// registerAgent does what register.py does with a registration token:
// list the register object of key, create it, wait, list again for the
// agent's keys.
func (rt *regTest) registerAgent(t *testing.T, token, key string) (id, access, secret string) {
	t.Helper()
	auth := basic("registrationToken", token)
	_, list := rt.do(t, "GET", "/v1/register?key="+key, "", auth)
	if data := list["data"].([]any); len(data) == 0 {
		code, r := rt.do(t, "POST", "/v1/register", `{"key":"`+key+`"}`, auth)
		if code != 201 || r["state"] != "registering" || r["accessKey"] != nil {
			t.Fatalf("POST /v1/register = %d %v", code, r)
		}
		rt.clock.Add(2 * time.Second)
	}
	_, list = rt.do(t, "GET", "/v1/register?key="+key, "", auth)
	r := list["data"].([]any)[0].(map[string]any)
	if r["state"] != "active" || r["accessKey"] == nil {
		t.Fatalf("register = %v", r)
	}
	return r["id"].(string), r["accessKey"].(string), r["secretKey"].(string)
}

func (rt *regTest) publish(t *testing.T, access, secret, uuid, hostname, ip string, createLabels map[string]string) int {
	t.Helper()
	res := []map[string]any{
		{"type": "physicalHost", "uuid": "p-" + uuid},
		{"type": "host", "kind": "docker", "uuid": uuid, "hostname": hostname, "createLabels": createLabels, "labels": map[string]string{}},
		{"type": "ipAddress", "uuid": ip, "address": ip, "hostUuid": uuid},
	}
	b, _ := json.Marshal(map[string]any{"name": "reply.ping", "data": map[string]any{"resources": res}})
	code, _ := rt.do(t, "POST", "/v1/publish", string(b), basic(access, secret))
	return code
}

func (rt *regTest) hosts(t *testing.T, path string) []map[string]any {
	t.Helper()
	code, m := rt.do(t, "GET", path, "", nil)
	if code != 200 {
		t.Fatalf("GET %s = %d %v", path, code, m)
	}
	var out []map[string]any
	for _, d := range m["data"].([]any) {
		out = append(out, d.(map[string]any))
	}
	return out
}

// The register object (RegisterCreate, RegisterOutputFilter): the agent's
// keys show only once it is active and only to a request naming its key.
func TestRegisterObject(t *testing.T) {
	rt := newRegAPI(t)
	token := rt.newToken(t, "1a5")["token"].(string)
	key := strings.Repeat("ab", 64)
	id, access, secret := rt.registerAgent(t, token, key)
	if !strings.HasPrefix(id, "1go") || len(access) != 20 || len(secret) != 40 {
		t.Errorf("register %s keys %q %q", id, access, secret)
	}
	_, r := rt.do(t, "GET", "/v1/register/"+id, "", basic("registrationToken", token))
	if r["accessKey"] != nil || r["type"] != "register" || r["baseType"] != "genericObject" || r["accountId"] != "1a5" {
		t.Errorf("register by id without key = %v", r)
	}
	// The same key finds the same register object: same agent, same keys.
	if id2, a2, _ := rt.registerAgent(t, token, key); id2 != id || a2 != access {
		t.Errorf("re-registration got %s %s, want %s %s", id2, a2, id, access)
	}
	// A registration token authenticates for the register schema only.
	if code, _ := rt.do(t, "GET", "/v1/hosts", "", basic("registrationToken", token)); code != 404 {
		t.Errorf("token on /v1/hosts = %d, want 404", code)
	}
	if code, _ := rt.do(t, "GET", "/v1/registrationtokens", "", basic(access, secret)); code != 404 {
		t.Errorf("agent key on registrationtokens = %d, want 404", code)
	}
}

// A host is what the agent's ping answer reports (AgentResourcesMonitorImpl
// setHosts/setIpAddresses), in the token's account, created
// registering -> active; agentState null until the agent goes through
// agent.reconnect (AgentHostStateUpdate); CATTLE_HOST_LABELS (createLabels)
// count only when it is created; hostname and address follow the reports.
func TestRegisteredHostLifecycle(t *testing.T) {
	rt := newRegAPI(t)
	rt.be.settings[settingProjectUUID] = "system-ha-abcd"
	token := rt.newToken(t, "1a5")["token"].(string)
	_, access, secret := rt.registerAgent(t, token, strings.Repeat("01", 64))
	if code := rt.publish(t, access, secret, "uuid-1", "h1", "10.213.2.1", map[string]string{"role": "app", "zone": "a"}); code != 201 {
		t.Fatalf("publish = %d", code)
	}
	hs := rt.hosts(t, "/v1/projects/1a5/hosts")
	if len(hs) != 1 || hs[0]["state"] != "registering" {
		t.Fatalf("hosts right after the first report = %v", hs)
	}
	id := hs[0]["id"].(string)
	rt.clock.Add(2 * time.Second)
	rt.publish(t, access, secret, "uuid-1", "h1", "10.213.2.1", nil)
	h := rt.hosts(t, "/v1/projects/1a5/hosts?include=ipAddresses")[0]
	want := map[string]any{"id": id, "type": "host", "kind": "docker", "hostname": "h1", "state": "active", "agentState": nil,
		"accountId": "1a5", "name": nil, "transitioning": "no", "labels": map[string]any{"role": "app", "zone": "a"}}
	for k, v := range want {
		if !cmp.Equal(h[k], v) {
			t.Errorf("host %s = %v, want %v", k, h[k], v)
		}
	}
	if _, ok := h["agentIpAddress"]; ok {
		t.Error("agentIpAddress is not a field of cattle v0.159.7's host")
	}
	ips := h["ipAddresses"].([]any)
	if len(ips) != 1 || ips[0].(map[string]any)["address"] != "10.213.2.1" || !strings.HasPrefix(ips[0].(map[string]any)["id"].(string), "1ia") {
		t.Errorf("ipAddresses = %v", ips)
	}
	_, ipl := rt.do(t, "GET", strings.TrimPrefix(h["links"].(map[string]any)["ipAddresses"].(string), rt.srv.URL), "", nil)
	if ipl["data"].([]any)[0].(map[string]any)["address"] != "10.213.2.1" {
		t.Errorf("ipAddresses link = %v", ipl)
	}
	acts := h["actions"].(map[string]any)
	if len(acts) != 3 || acts["deactivate"] != rt.srv.URL+"/v1/projects/1a5/hosts/"+id+"/?action=deactivate" || acts["update"] == nil || acts["dockersocket"] == nil {
		t.Errorf("actions of an active host = %v", acts)
	}

	// Scope: the admin sees System HA's hosts and this one; a project only
	// its own; System HA's hosts are the cluster members, as before.
	names := func(path string) []string {
		var out []string
		for _, h := range rt.hosts(t, path) {
			out = append(out, h["hostname"].(string))
		}
		return out
	}
	if got := names("/v1/hosts"); !cmp.Equal(got, []string{"rs1", "rs2", "h1"}) {
		t.Errorf("admin /v1/hosts = %v", got)
	}
	if got := names("/v1/hosts?projectId=1a5"); !cmp.Equal(got, []string{"h1"}) {
		t.Errorf("/v1/hosts?projectId=1a5 = %v", got)
	}
	if got := names("/v1/projects/1a7/hosts"); !cmp.Equal(got, []string{"rs1", "rs2"}) {
		t.Errorf("System HA hosts = %v", got)
	}
	// The nodes' hosts are hosts like any other: they can be deactivated
	// and removed (a dead node's is, by an operator or haplan).
	for _, h := range rt.hosts(t, "/v1/projects/1a7/hosts") {
		if acts, _ := h["actions"].(map[string]any); acts["deactivate"] == nil {
			t.Errorf("System HA host %v has no deactivate action: %v", h["hostname"], acts)
		}
	}
	// hostname is no collection filter of host: ignored.
	if got := names("/v1/projects/1a5/hosts?hostname=nope"); len(got) != 1 {
		t.Errorf("?hostname= filtered: %v", got)
	}
	if got := names("/v1/projects/1a5/hosts?state=inactive"); len(got) != 0 {
		t.Errorf("?state=inactive = %v", got)
	}

	// Labels from CATTLE_HOST_LABELS only at creation; hostname and the
	// address follow.
	rt.publish(t, access, secret, "uuid-1", "h1-renamed", "10.213.2.9", map[string]string{"role": "db"})
	_, h = rt.do(t, "GET", "/v1/hosts/"+id+"?include=ipAddresses", "", nil)
	if h["hostname"] != "h1-renamed" || h["labels"].(map[string]any)["role"] != "app" ||
		h["ipAddresses"].([]any)[0].(map[string]any)["address"] != "10.213.2.9" {
		t.Errorf("after a changed report: %v %v %v", h["hostname"], h["labels"], h["ipAddresses"])
	}

	// A PUT of labels sets exactly them (HostCreateUpdate: new ones
	// created, the others removed); a later report does not bring the old
	// ones back.
	if code, h := rt.do(t, "PUT", "/v1/projects/1a5/hosts/"+id, `{"labels": {"role": "web", "tier": "1"}}`, nil); code != 200 ||
		!cmp.Equal(h["labels"], map[string]any{"role": "web", "tier": "1"}) {
		t.Errorf("PUT labels = %d %v", code, h["labels"])
	}
	rt.publish(t, access, secret, "uuid-1", "h1", "10.213.2.1", nil)
	if _, h := rt.do(t, "GET", "/v1/hosts/"+id, "", nil); !cmp.Equal(h["labels"], map[string]any{"role": "web", "tier": "1"}) {
		t.Errorf("labels after a report = %v", h["labels"])
	}
	if code, _ := rt.do(t, "PUT", "/v1/projects/1a5/hosts/"+id, `{"labels": "x"}`, nil); code != 422 {
		t.Errorf("PUT of labels that are no map = %d, want 422", code)
	}

	// PingMonitorImpl: 6 failed pings 5 s apart, each failing 15 s after
	// it was sent: reconnecting 45 s after the last answer, active once it
	// answers again.
	agentState := func() any {
		_, h := rt.do(t, "GET", "/v1/hosts/"+id, "", nil)
		return h["agentState"]
	}
	rt.clock.Add(44 * time.Second)
	if s := agentState(); s != nil {
		t.Errorf("agentState 44 s after the last report = %v", s)
	}
	rt.clock.Add(2 * time.Second)
	if s := agentState(); s != "reconnecting" {
		t.Errorf("agentState 46 s after the last report = %v", s)
	}
	rt.publish(t, access, secret, "uuid-1", "h1", "10.213.2.1", nil)
	if s := agentState(); s != "active" {
		t.Errorf("agentState after the agent answered again = %v", s)
	}
	rt.be.settings[settingPingFailures] = "1"
	rt.be.settings[settingPingTimeout] = "1"
	rt.clock.Add(7 * time.Second)
	if s := agentState(); s != "reconnecting" {
		t.Errorf("agentState with shortened ping settings = %v", s)
	}
}

// Generic host processes: deactivate from active (DELETE of an active host
// is a 405: AbstractObjectResourceManager.deleteInternal turns the
// ProcessCancelException into METHOD_NOT_ALLOWED), remove from inactive,
// then removed, purged (PurgeMonitorImpl after removeTime), gone from lists
// api.show.removed.for.seconds after removal; HostRemove deactivates the
// agent, so its reports no longer count.
func TestRegisteredHostRemoval(t *testing.T) {
	rt := newRegAPI(t)
	token := rt.newToken(t, "1a5")["token"].(string)
	_, access, secret := rt.registerAgent(t, token, strings.Repeat("02", 64))
	rt.publish(t, access, secret, "uuid-1", "h2", "10.213.2.2", nil)
	rt.clock.Add(2 * time.Second)
	id := rt.hosts(t, "/v1/projects/1a5/hosts")[0]["id"].(string)
	path := "/v1/projects/1a5/hosts/" + id
	if code, m := rt.do(t, "DELETE", path, "", nil); code != 405 || m["code"] != "MethodNotAllowed" {
		t.Errorf("DELETE active = %d %v", code, m)
	}
	code, h := rt.do(t, "POST", path+"/?action=deactivate", "", nil)
	if code != 202 || h["state"] != "deactivating" || h["transitioning"] != "yes" {
		t.Errorf("deactivate = %d %v/%v", code, h["state"], h["transitioning"])
	}
	rt.clock.Add(2 * time.Second)
	_, h = rt.do(t, "GET", path, "", nil)
	if h["state"] != "inactive" || h["agentState"] != nil {
		t.Errorf("after deactivate: %v %v", h["state"], h["agentState"])
	}
	if diff := cmp.Diff([]string{"activate", "dockersocket", "remove", "update"}, sortedKeys(h["actions"].(map[string]any))); diff != "" {
		t.Errorf("actions of an inactive host (-want +got):\n%s", diff)
	}
	if code, m := rt.do(t, "POST", path+"?action=deactivate", "", nil); code != 422 || m["code"] != "ActionNotAvailable" {
		t.Errorf("deactivate an inactive host = %d %v", code, m)
	}
	code, h = rt.do(t, "DELETE", path, "", nil)
	if code != 200 || h["state"] != "removing" {
		t.Errorf("DELETE inactive = %d %v", code, h["state"])
	}
	rt.clock.Add(2 * time.Second)
	_, h = rt.do(t, "GET", path, "", nil)
	if h["state"] != "removed" || h["removed"] == nil || h["removeTime"] == nil || h["agentState"] != "inactive" {
		t.Errorf("after DELETE: %v removed=%v removeTime=%v agentState=%v", h["state"], h["removed"], h["removeTime"], h["agentState"])
	}
	if diff := cmp.Diff([]string{"purge", "restore"}, sortedKeys(h["actions"].(map[string]any))); diff != "" {
		t.Errorf("actions of a removed host (-want +got):\n%s", diff)
	}
	// The agent is inactive: a report, even of a new host, changes nothing.
	rt.publish(t, access, secret, "uuid-2", "h2", "10.213.2.2", nil)
	if hs := rt.hosts(t, "/v1/projects/1a5/hosts"); len(hs) != 1 {
		t.Errorf("an inactive agent's report made a host: %v", hs)
	}
	rt.clock.Add(2 * time.Minute)
	_, h = rt.do(t, "GET", path, "", nil)
	if h["state"] != "purged" {
		t.Errorf("2 min after removal: %v", h["state"])
	}
	rt.clock.Add(5 * time.Minute)
	if hs := rt.hosts(t, "/v1/projects/1a5/hosts"); len(hs) != 0 {
		t.Errorf("listed 7 min after removal: %v", hs)
	}
	if code, h := rt.do(t, "GET", path, "", nil); code != 200 || h["state"] != "purged" {
		t.Errorf("by id after purge = %d %v", code, h["state"])
	}
}

// A new .docker_uuid under the same registration (rancher-agent-state or
// the state dir's uuid file gone) is a second host of the same agent
// (setHosts keys hosts by reported uuid); a new .registration_token is a
// new agent and host, the old one left reconnecting.
func TestReRegistration(t *testing.T) {
	rt := newRegAPI(t)
	token := rt.newToken(t, "1a5")["token"].(string)
	_, a1, s1 := rt.registerAgent(t, token, strings.Repeat("03", 64))
	rt.publish(t, a1, s1, "uuid-1", "h3", "10.213.2.3", nil)
	rt.publish(t, a1, s1, "uuid-1", "h3", "10.213.2.3", nil)
	if hs := rt.hosts(t, "/v1/projects/1a5/hosts"); len(hs) != 1 {
		t.Fatalf("same uuid twice: %d hosts", len(hs))
	}
	rt.publish(t, a1, s1, "uuid-2", "h3", "10.213.2.3", nil)
	if hs := rt.hosts(t, "/v1/projects/1a5/hosts"); len(hs) != 2 || hs[0]["agentId"] != hs[1]["agentId"] {
		t.Fatalf("new docker uuid: %v", hs)
	}
	_, a2, s2 := rt.registerAgent(t, token, strings.Repeat("04", 64))
	if a2 == a1 {
		t.Fatal("a new key got the old agent")
	}
	rt.clock.Add(46 * time.Second)
	rt.publish(t, a2, s2, "uuid-3", "h3", "10.213.2.3", nil)
	rt.clock.Add(2 * time.Second)
	var states []string
	for _, h := range rt.hosts(t, "/v1/projects/1a5/hosts") {
		s, _ := h["agentState"].(string)
		states = append(states, h["state"].(string)+"/"+s)
	}
	if !cmp.Equal(states, []string{"active/reconnecting", "active/reconnecting", "active/"}) {
		t.Errorf("host states = %v", states)
	}
}

// Lists page at 100 (ParseCollectionAttributes defaultLimit) with a
// marker=m<offset> next link (AbstractJooqResourceManager.addLimit).
func TestHostListPages(t *testing.T) {
	rt := newRegAPI(t)
	for i := 0; i < 105; i++ {
		h := HostRecord{AgentID: int64(i + 1), ReportedUUID: fmt.Sprint(i), AccountID: "1a5", Hostname: fmt.Sprintf("h%d", i), Life: lifecycle{State: "active"}}
		if _, err := rt.reg.AddHost(t.Context(), &h); err != nil {
			t.Fatal(err)
		}
	}
	code, m := rt.do(t, "GET", "/v1/projects/1a5/hosts", "", nil)
	pg := m["pagination"].(map[string]any)
	if code != 200 || len(m["data"].([]any)) != 100 || pg["partial"] != true {
		t.Fatalf("first page: %d %d %v", code, len(m["data"].([]any)), pg)
	}
	next := pg["next"].(string)
	if next != rt.srv.URL+"/v1/projects/1a5/hosts?marker=m100" {
		t.Errorf("next = %q", next)
	}
	_, m = rt.do(t, "GET", strings.TrimPrefix(next, rt.srv.URL), "", nil)
	if len(m["data"].([]any)) != 5 || m["pagination"].(map[string]any)["partial"] != false {
		t.Errorf("second page: %d %v", len(m["data"].([]any)), m["pagination"])
	}
	if _, m = rt.do(t, "GET", "/v1/projects/1a5/hosts?limit=-1", "", nil); len(m["data"].([]any)) != 105 {
		t.Errorf("limit=-1: %d", len(m["data"].([]any)))
	}
}

// With access control on, the registration token and the agent's keys
// authenticate (RegistrationTokenAccountLookup; BasicAuthImpl with
// agentApiKey among account.by.key.credential.types); /v1/scripts stays
// open.
func TestRegistrationWithAccessControl(t *testing.T) {
	rt := newRegAPI(t)
	token := rt.newToken(t, "1a5")["token"].(string)
	rt.be.settings[SettingSecurityEnabled] = "true"
	rt.api.cache.refresh(t.Context(), rt.be)
	if code, _ := rt.do(t, "GET", "/v1/hosts", "", nil); code != 401 {
		t.Fatalf("access control off?")
	}
	if resp, _ := do(t, "GET", rt.srv.URL+"/v1/scripts/"+token, "", nil); resp.StatusCode != 200 {
		t.Errorf("script with access control on = %d", resp.StatusCode)
	}
	if resp, _ := do(t, "GET", rt.srv.URL+"/v1/projects/1a5/scripts/"+token, "", nil); resp.StatusCode != 200 {
		t.Errorf("project script with access control on = %d", resp.StatusCode)
	}
	_, access, secret := rt.registerAgent(t, token, strings.Repeat("05", 64))
	if code := rt.publish(t, access, secret, "u", "h5", "10.213.2.5", nil); code != 201 {
		t.Errorf("publish with access control on = %d", code)
	}
	if code, _ := rt.do(t, "GET", "/v1/register", "", basic("registrationToken", token+"x")); code != 401 {
		t.Errorf("bad token = %d, want 401", code)
	}
}

// generic.resource.process.0..6 and their actions by state.
func TestLifecycleActions(t *testing.T) {
	now := time.UnixMilli(1_000_000)
	for state, want := range map[string][]string{
		"registering": {"activate", "deactivate", "remove"},
		"active":      {"deactivate", "update"},
		"inactive":    {"activate", "remove", "update"},
		"removed":     {"purge", "restore"},
		"purged":      nil,
	} {
		if got := (lifecycle{State: state}).actions(now); !cmp.Equal(got, want) {
			t.Errorf("%s: %v, want %v", state, got, want)
		}
	}
	l := lifecycle{State: "inactive"}
	l, err := l.run("remove", now, time.Second)
	if err != nil || l.Trans != "removing" || l.RemoveTime != now.Add(time.Minute).UnixMilli() {
		t.Fatalf("remove: %+v %v", l, err)
	}
	// Purged by the first purge run (every 60 s) after removeTime.
	at := func(ms int64) string { s, _ := l.current(time.UnixMilli(ms)); return s }
	if at(l.RemoveTime) != "removed" || at(purgeTime(l.RemoveTime)) != "purged" || purgeTime(l.RemoveTime)-l.RemoveTime > 60_000 {
		t.Errorf("purge at %d for removeTime %d", purgeTime(l.RemoveTime), l.RemoveTime)
	}
	if _, err := l.run("deactivate", now, 0); err != errActionNotAvailable {
		t.Errorf("deactivate while removing: %v", err)
	}
}

func sortedKeys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}
