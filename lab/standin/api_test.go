package standin

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func newTestAPI(t *testing.T) (*API, *memBackend, *httptest.Server) {
	t.Helper()
	be := newMemBackend()
	a := &API{Store: be, DB: DBConfig{Host: "10.213.0.3", Port: 3306, Name: "cattle", User: "cattle", Password: "pw-secret"},
		Registry: newMemRegistry(), Transition: time.Millisecond}
	addNodeHosts(t, a)
	time.Sleep(5 * time.Millisecond) // past "registering"
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	return a, be, srv
}

// addNodeHosts reports the agents of nodes rs1 and rs2, as their
// cluster-manager does: they become System HA's hosts.
func addNodeHosts(t *testing.T, a *API) {
	t.Helper()
	for _, n := range []struct{ id, name, ip string }{{"uuid-rs1", "rs1", "10.213.1.1"}, {"uuid-rs2", "rs2", "10.213.1.2"}} {
		if err := a.reportHAAgent(context.Background(), n.id, n.name, n.ip); err != nil {
			t.Fatal(err)
		}
	}
}

func do(t *testing.T, method, url, body string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return m
}

func TestPingAndRoot(t *testing.T) {
	_, _, srv := newTestAPI(t)
	resp, body := do(t, "GET", srv.URL+"/ping", "", nil)
	if resp.StatusCode != 200 || string(body) != "pong" || resp.Header.Get("Content-Type") != "text/plain" {
		t.Errorf("/ping = %d %q %q", resp.StatusCode, body, resp.Header.Get("Content-Type"))
	}
	if resp, _ := do(t, "GET", srv.URL+"/healthcheck", "", nil); resp.StatusCode != 200 {
		t.Errorf("/healthcheck = %d", resp.StatusCode)
	}
	resp, body = do(t, "GET", srv.URL+"/v1", "", nil)
	links, _ := decode(t, body)["links"].(map[string]any)
	for _, l := range []string{"haConfigs", "projects", "schemas", "settings"} {
		if links[l] != srv.URL+"/v1/"+strings.ToLower(l) {
			t.Errorf("/v1 links[%s] = %v", l, links[l])
		}
	}
	if resp.StatusCode != 200 {
		t.Errorf("/v1 = %d", resp.StatusCode)
	}
}

func TestHAConfigShapes(t *testing.T) {
	_, be, srv := newTestAPI(t)
	be.settings[SettingClusterSize] = "3"
	resp, body := do(t, "GET", srv.URL+"/v1/haconfigs", "", map[string]string{
		"X-Forwarded-Proto": "https", "X-Forwarded-Host": "rancher.example:8443", "X-Forwarded-Port": "443"})
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("GET /v1/haconfigs = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	got := decode(t, body)
	want := map[string]any{
		"id": "haConfig", "type": "haConfig", "baseType": "haConfig", "enabled": false, "clusterSize": float64(3),
		"dbHost": "10.213.0.3", "dbSize": nil,
		"actions": map[string]any{"createscript": "https://rancher.example/v1/haconfigs/haconfig/?action=createscript"},
		"links":   map[string]any{"self": "https://rancher.example/v1/haconfigs/haconfig", "dbdump": "https://rancher.example/v1/haconfigs/haconfig/dbdump"},
	}
	if got["type"] != "collection" || got["resourceType"] != "haConfig" {
		t.Errorf("collection type = %v/%v", got["type"], got["resourceType"])
	}
	data, _ := got["data"].([]any)
	if len(data) != 1 {
		t.Fatalf("data = %v", got["data"])
	}
	if diff := cmp.Diff(want, data[0]); diff != "" {
		t.Errorf("haConfig (-want +got):\n%s", diff)
	}
	// Any id resolves to the single resource.
	_, body = do(t, "GET", srv.URL+"/v1/haConfigs/whatever", "", nil)
	if one := decode(t, body); one["id"] != "haConfig" || one["links"].(map[string]any)["self"] != srv.URL+"/v1/haconfigs/haconfig" {
		t.Errorf("GET by id = %v", one)
	}
}

func TestCreateScript(t *testing.T) {
	_, be, srv := newTestAPI(t)
	be.settings[settingStackLaunched] = "true"
	var keys []string
	for _, path := range []string{"/v1/haconfigs/haconfig/?action=createscript", "/v1/haconfigs/haconfig?action=createscript"} {
		resp, body := do(t, "POST", srv.URL+path, `{"hostRegistrationUrl":"https://10.213.0.10","clusterSize":1}`, map[string]string{"Content-Type": "text/plain"})
		if resp.StatusCode != 200 {
			t.Fatalf("POST %s = %d %s", path, resp.StatusCode, body)
		}
		if ct, cd := resp.Header.Get("Content-Type"), resp.Header.Get("Content-Disposition"); ct != "application/octet-stream" || cd != "attachment; filename=rancher-ha.sh" {
			t.Errorf("headers = %q %q", ct, cd)
		}
		script := string(body)
		if !strings.HasPrefix(script, "#!/bin/sh\nset -e\n") || strings.Contains(script, "pw-secret") || strings.Contains(script, "--privileged") {
			t.Errorf("script looks wrong:\n%s", script)
		}
		keys = append(keys, between(script, "encryption.key << EOF\n", "\n"))
		k, err := DecodeKey(keys[len(keys)-1])
		if err != nil {
			t.Fatal(err)
		}
		pw, err := Decrypt(k, between(script, "CATTLE_DB_CATTLE_PASSWORD=", "\n"))
		if err != nil || pw != "pw-secret" {
			t.Errorf("decrypted password = %q, %v", pw, err)
		}
	}
	if keys[0] == keys[1] {
		t.Error("createscript reused the encryption key")
	}
	if be.settings[SettingClusterSize] != "1" {
		t.Errorf("ha.cluster.size = %q, want 1", be.settings[SettingClusterSize])
	}
	if _, ok := be.settings[settingStackLaunched]; ok {
		t.Error("createscript kept the launched marker")
	}
}

func TestCreateScriptValidation(t *testing.T) {
	_, _, srv := newTestAPI(t)
	resp, body := do(t, "POST", srv.URL+"/v1/haconfigs/haconfig/?action=createscript", `{"clusterSize":3}`, nil)
	got := decode(t, body)
	if resp.StatusCode != 422 {
		t.Errorf("status = %d", resp.StatusCode)
	}
	want := map[string]any{"type": "error", "status": float64(422), "code": "MissingRequired", "fieldName": "hostRegistrationUrl"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}

// cattle v0.159.7: HaConfigManager.updateInternal writes ha.enabled through
// SettingsUtils.changeSetting, which defers ArchaiusUtil.refresh until the
// response is written, and answers getHaConfig() from the cached setting:
// the PUT's answer holds the old value; a later GET holds the new one.
func TestEnablePUTAnswersTheOldValue(t *testing.T) {
	_, be, srv := newTestAPI(t)
	old := false
	for _, want := range []bool{true, false} {
		resp, body := do(t, "PUT", srv.URL+"/v1/haconfigs/haconfig", fmt.Sprintf(`{"enabled":%t}`, want), map[string]string{"Content-Type": "application/json"})
		if resp.StatusCode != 200 || decode(t, body)["enabled"] != old {
			t.Errorf("PUT enabled=%t = %d %s, want the old value %t in the answer", want, resp.StatusCode, body, old)
		}
		if be.settings[SettingHAEnabled] != strconv.FormatBool(want) {
			t.Errorf("after PUT enabled=%t the database holds %q", want, be.settings[SettingHAEnabled])
		}
		// The refresh ran before the answer left: the next GET sees it.
		_, body = do(t, "GET", srv.URL+"/v1/haconfigs", "", nil)
		if got := decode(t, body)["data"].([]any)[0].(map[string]any)["enabled"]; got != want {
			t.Errorf("GET after PUT enabled=%t says enabled=%v", want, got)
		}
		old = want
	}
}

// A write through another server (the database changed under this one)
// shows only when the cache reloads on its timer.
func TestSettingsCacheReloadsOnItsTimer(t *testing.T) {
	a, be, srv := newTestAPI(t)
	a.cache.every = time.Hour
	enabled := func() any {
		_, body := do(t, "GET", srv.URL+"/v1/haconfigs", "", nil)
		return decode(t, body)["data"].([]any)[0].(map[string]any)["enabled"]
	}
	if enabled() != false {
		t.Fatal("enabled before any write")
	}
	be.SetSetting(context.Background(), SettingHAEnabled, "true")
	if enabled() != false {
		t.Error("a database change showed before the cache reloaded")
	}
	a.cache.mu.Lock()
	a.cache.every = time.Millisecond
	a.cache.mu.Unlock()
	eventually(t, "the timer to reload the cache", func() bool { return enabled() == true })
}

func TestSettings(t *testing.T) {
	_, be, srv := newTestAPI(t)
	resp, body := do(t, "PUT", srv.URL+"/v1/settings/ha.enabled", `{"value":"true"}`, nil)
	if resp.StatusCode != 200 || decode(t, body)["value"] != "true" || be.settings[SettingHAEnabled] != "true" {
		t.Errorf("PUT setting = %d %s", resp.StatusCode, body)
	}
	eventually(t, "activeValue to follow the value", func() bool {
		_, body = do(t, "GET", srv.URL+"/v1/settings/ha.enabled", "", nil)
		m := decode(t, body)
		return m["value"] == "true" && m["activeValue"] == "true"
	})
}

// eventually polls cond every 5ms for up to 5s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestProjectsAndHosts(t *testing.T) {
	_, be, srv := newTestAPI(t)
	_, body := do(t, "GET", srv.URL+"/v1/projects", "", nil)
	if data := decode(t, body)["data"].([]any); len(data) != 1 {
		t.Errorf("projects before HA = %v", data)
	}
	be.settings[settingProjectUUID] = "system-ha-abcd"
	// cattle ProjectResourceManager.listInternal / AuthDaoImpl.getAccessibleProjects:
	// without all=true the admin sees only its member projects; System HA
	// belongs to cluster-manager's service account.
	_, body = do(t, "GET", srv.URL+"/v1/projects", "", nil)
	for _, p := range decode(t, body)["data"].([]any) {
		if uuid := p.(map[string]any)["uuid"].(string); strings.HasPrefix(uuid, "system-ha-") {
			t.Errorf("GET /v1/projects without all=true lists %s", uuid)
		}
	}
	_, body = do(t, "GET", srv.URL+"/v1/projects?all=true", "", nil)
	var ha map[string]any
	for _, p := range decode(t, body)["data"].([]any) {
		if pm := p.(map[string]any); strings.HasPrefix(pm["uuid"].(string), "system-ha-") {
			ha = pm
		}
	}
	if ha == nil || ha["name"] != "System HA" {
		t.Fatalf("no System HA project in %s", body)
	}
	hostsURL := ha["links"].(map[string]any)["hosts"].(string)
	_, body = do(t, "GET", hostsURL, "", nil)
	var got []string
	for _, h := range decode(t, body)["data"].([]any) {
		hm := h.(map[string]any)
		if _, ok := hm["agentIpAddress"]; ok {
			t.Errorf("host %v has agentIpAddress, which cattle v0.159.7 does not have", hm["id"])
		}
		_, ib := do(t, "GET", hm["links"].(map[string]any)["ipAddresses"].(string), "", nil)
		ip := decode(t, ib)["data"].([]any)[0].(map[string]any)["address"].(string)
		got = append(got, hm["hostname"].(string)+"/"+ip+"/"+hm["state"].(string))
	}
	want := []string{"rs1/10.213.1.1/active", "rs2/10.213.1.2/active"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("hosts (-want +got):\n%s", diff)
	}
}

func TestCACertEndpoint(t *testing.T) {
	_, be, srv := newTestAPI(t)
	if resp, _ := do(t, "GET", srv.URL+"/v1/scripts/ca.crt", "", nil); resp.StatusCode != 404 {
		t.Errorf("ca.crt before the CA exists = %d", resp.StatusCode)
	}
	b, err := GenerateSelfSigned("https://lb", testNow)
	if err != nil {
		t.Fatal(err)
	}
	be.certs[certSystemSSL] = b
	resp, body := do(t, "GET", srv.URL+"/v1/scripts/ca.crt", "", nil)
	if resp.StatusCode != 200 || string(body) != string(b.Chain) {
		t.Errorf("ca.crt = %d %q", resp.StatusCode, body)
	}
}

func TestBaseURL(t *testing.T) {
	tests := []struct {
		name string
		host string
		hdr  map[string]string
		want string
	}{
		{"plain", "10.0.0.1:8080", nil, "http://10.0.0.1:8080"},
		{"proto", "lb", map[string]string{"X-Forwarded-Proto": "https"}, "https://lb"},
		{"port", "lb:81", map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-Port": "8443"}, "https://lb:8443"},
		{"default port", "lb:81", map[string]string{"X-Forwarded-Proto": "http", "X-Forwarded-Port": "80"}, "http://lb"},
		{"forwarded host list", "x", map[string]string{"X-Forwarded-Host": "a.example, b.example"}, "http://a.example"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/v1", nil)
			r.Host = tt.host
			for k, v := range tt.hdr {
				r.Header.Set(k, v)
			}
			if got := baseURL(r); got != tt.want {
				t.Errorf("baseURL = %q, want %q", got, tt.want)
			}
		})
	}
}

func between(s, start, end string) string {
	_, after, ok := strings.Cut(s, start)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(after, end)
	return v
}

// cattle v0.159.7 access control: off, every request is the admin, a
// wrong key too; on (localauthconfig enabled), /v1 without a valid key
// pair is a 401 with a Basic challenge, /ping and /v1/scripts stay open,
// an admin account key sees everything, a project key only its project.
func TestAccessControl(t *testing.T) {
	_, be, srv := newTestAPI(t)
	be.settings[settingProjectUUID] = "system-ha-abcd"
	withKey := func(access, secret string) map[string]string {
		return map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(access+":"+secret))}
	}
	if resp, _ := do(t, "GET", srv.URL+"/v1/haconfigs", "", withKey("NOPE", "nope")); resp.StatusCode != 200 {
		t.Errorf("access control off, wrong key: %d, want 200 (runs as the admin)", resp.StatusCode)
	}
	if resp, _ := do(t, "GET", srv.URL+"/v1/haconfigs", "", map[string]string{"X-ENFORCE-AUTHENTICATION": "true"}); resp.StatusCode != 401 {
		t.Errorf("access control off, X-ENFORCE-AUTHENTICATION: %d, want 401", resp.StatusCode)
	}
	mkKey := func(hdr map[string]string, body string) (string, string) {
		resp, b := do(t, "POST", srv.URL+"/v1/apikeys", body, hdr)
		k := decode(t, b)
		if resp.StatusCode != 201 || len(k["publicValue"].(string)) != 20 || len(k["secretValue"].(string)) != 40 {
			t.Fatalf("POST /v1/apikeys = %d %s", resp.StatusCode, b)
		}
		return k["publicValue"].(string), k["secretValue"].(string)
	}
	access, secret := mkKey(nil, `{"name":"haplan"}`)
	envAccess, envSecret := mkKey(nil, `{"accountId":"`+defaultProjectID+`"}`)

	resp, b := do(t, "POST", srv.URL+"/v1/localauthconfig", `{"enabled":true,"username":"admin","password":"pw"}`, nil)
	if resp.StatusCode != 201 {
		t.Fatalf("localauthconfig = %d %s", resp.StatusCode, b)
	}
	eventually(t, "access control on", func() bool {
		resp, _ := do(t, "GET", srv.URL+"/v1/haconfigs", "", nil)
		return resp.StatusCode == 401
	})
	resp, b = do(t, "GET", srv.URL+"/v1/projects?all=true", "", nil)
	if e := decode(t, b); resp.StatusCode != 401 || e["code"] != "Unauthorized" || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic realm=") {
		t.Errorf("no key = %d %v %q", resp.StatusCode, e, resp.Header.Get("WWW-Authenticate"))
	}
	if resp, _ := do(t, "GET", srv.URL+"/v1", "", map[string]string{"X-API-No-Challenge": "true"}); resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != "" {
		t.Errorf("X-API-No-Challenge: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	for _, open := range []string{"/ping", "/healthcheck"} {
		if resp, _ := do(t, "GET", srv.URL+open, "", nil); resp.StatusCode != 200 {
			t.Errorf("%s with access control on = %d", open, resp.StatusCode)
		}
	}
	if resp, _ := do(t, "GET", srv.URL+"/v1/haconfigs", "", withKey(access, secret+"x")); resp.StatusCode != 401 {
		t.Errorf("wrong secret = %d", resp.StatusCode)
	}
	if resp, _ := do(t, "GET", srv.URL+"/v1/haconfigs", "", withKey(access, secret)); resp.StatusCode != 200 {
		t.Errorf("admin key on haconfigs = %d", resp.StatusCode)
	}
	count := func(hdr map[string]string) int {
		_, b := do(t, "GET", srv.URL+"/v1/projects?all=true", "", hdr)
		return len(decode(t, b)["data"].([]any))
	}
	if n := count(withKey(access, secret)); n != 2 {
		t.Errorf("admin key sees %d projects with all=true, want 2", n)
	}
	if n := count(withKey(envAccess, envSecret)); n != 1 {
		t.Errorf("project key sees %d projects with all=true, want only its own", n)
	}
	if resp, _ := do(t, "GET", srv.URL+"/v1/haconfigs", "", withKey(envAccess, envSecret)); resp.StatusCode != 404 {
		t.Errorf("project key on haconfigs = %d, want 404", resp.StatusCode)
	}
}

// rancher.server.image is the running server's release from its
// environment (rancher v1.0.1 server/Dockerfile: ENV
// CATTLE_RANCHER_SERVER_IMAGE v1.0.1), not a database value: value and
// activeValue both carry it (cattle ActiveSetting.getValue).
func TestServerImageSetting(t *testing.T) {
	t.Setenv("CATTLE_RANCHER_SERVER_IMAGE", "v1.0.2")
	_, _, srv := newTestAPI(t)
	_, body := do(t, "GET", srv.URL+"/v1/settings/rancher.server.image", "", nil)
	m := decode(t, body)
	if m["value"] != "v1.0.2" || m["activeValue"] != "v1.0.2" || m["inDb"] == true {
		t.Errorf("rancher.server.image = %s, want v1.0.2 from the environment, not in the database", body)
	}
}
