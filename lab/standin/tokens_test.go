package standin

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

type regTest struct {
	api   *API
	be    *memBackend
	reg   *memRegistry
	clock *fakeClock
	srv   *httptest.Server
}

// newRegAPI is newTestAPI with a registry and a fake clock.
func newRegAPI(t *testing.T) *regTest {
	t.Helper()
	rt := &regTest{be: newMemBackend(), reg: newMemRegistry(), clock: &fakeClock{t: time.Date(2016, 4, 27, 8, 30, 0, 0, time.UTC)}}
	rt.api = &API{Store: rt.be, Registry: rt.reg, Now: rt.clock.Now, Transition: time.Second,
		DB: DBConfig{Host: "10.213.0.3", Port: 3306, Name: "cattle", User: "cattle", Password: "pw-secret"}}
	addNodeHosts(t, rt.api)
	rt.srv = httptest.NewServer(rt.api.Handler())
	t.Cleanup(rt.srv.Close)
	return rt
}

func (rt *regTest) do(t *testing.T, method, path, body string, hdr map[string]string) (int, map[string]any) {
	t.Helper()
	resp, b := do(t, method, rt.srv.URL+path, body, hdr)
	if len(b) == 0 || b[0] != '{' {
		t.Fatalf("%s %s = %d %q", method, path, resp.StatusCode, b)
	}
	return resp.StatusCode, decode(t, b)
}

// newToken makes a token of project and lets it become active.
func (rt *regTest) newToken(t *testing.T, project string) map[string]any {
	t.Helper()
	code, tok := rt.do(t, "POST", "/v1/registrationtokens?projectId="+project, "{}", nil)
	if code != 201 {
		t.Fatalf("create token = %d %v", code, tok)
	}
	rt.clock.Add(2 * time.Second)
	_, tok = rt.do(t, "GET", "/v1/registrationtokens/"+tok["id"].(string), "", nil)
	return tok
}

// cattle v0.159.7 RegistrationToken.createToken: "<access>:<hour ms>:<sig>",
// sig the base64 HMAC-SHA1 of the first two parts keyed with the secret,
// without [/=+]; the hour is the UTC Calendar with minutes, seconds and
// milliseconds zeroed.
func TestRegistrationTokenFormat(t *testing.T) {
	at := time.Date(2016, 4, 27, 8, 59, 59, 999e6, time.UTC)
	h := hourOf(at)
	if want := time.Date(2016, 4, 27, 8, 0, 0, 0, time.UTC); !h.Equal(want) {
		t.Fatalf("hourOf = %v, want %v", h, want)
	}
	mac := hmac.New(sha1.New, []byte("secret"))
	mac.Write([]byte("ACCESS:1461744000000"))
	sig := regexp.MustCompile(`[/=+]`).ReplaceAllString(base64.StdEncoding.EncodeToString(mac.Sum(nil)), "")
	if got, want := registrationToken("ACCESS", "secret", h), "ACCESS:1461744000000:"+sig; got != want {
		t.Errorf("token = %q, want %q", got, want)
	}
	// ApiKeyFilter.generateKeys: 20 upper-case hex, 40 of base64 without [O0lI+/=].
	a, s, err := generateKeys()
	if err != nil || !regexp.MustCompile(`^[0-9A-F]{20}$`).MatchString(a) || !regexp.MustCompile(`^[1-9A-HJ-NP-Za-km-z]{40}$`).MatchString(s) {
		t.Errorf("keys %q %q %v", a, s, err)
	}
}

// SslCertificateUtils.digest: SHA-1 of the DER of the chain's first
// certificate, hex pairs joined by ':'; getOptions upper-cases it.
func TestCAFingerprint(t *testing.T) {
	b, err := GenerateSelfSigned("https://10.213.0.4", testNow)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b.Chain)
	sum := sha1.Sum(blk.Bytes)
	var want []string
	for _, c := range sum {
		want = append(want, fmt.Sprintf("%02X", c))
	}
	got, ok := CAFingerprint(append(append([]byte(nil), b.Chain...), b.Cert...))
	if !ok || got != strings.Join(want, ":") {
		t.Errorf("fingerprint = %q %t, want %q", got, ok, strings.Join(want, ":"))
	}
	if _, ok := CAFingerprint([]byte("junk")); ok {
		t.Error("fingerprint of junk")
	}
}

// cattle v0.159.7: POST answers 201 once the create process is scheduled,
// in its transitioning state "registering" (DefaultProcessInstanceImpl:
// setTransitioning, runScheduled); the key pair is made later in that
// process (RegisterTokenCreate/ApiKeyCreate), so RegistrationTokenOutputFilter
// adds nothing yet. Once active, the output filter adds token,
// registrationUrl, image and command (docker.register.command,
// system-services/defaults.properties line 134).
func TestRegistrationTokenShapes(t *testing.T) {
	rt := newRegAPI(t)
	code, tok := rt.do(t, "POST", "/v1/registrationtokens?projectId=1a5", "{}", nil)
	if code != 201 {
		t.Fatalf("POST = %d %v", code, tok)
	}
	id := tok["id"].(string)
	for k, want := range map[string]any{"type": "registrationToken", "baseType": "credential", "kind": "registrationToken",
		"accountId": "1a5", "state": "registering", "transitioning": "yes"} {
		if tok[k] != want {
			t.Errorf("created %s = %v, want %v", k, tok[k], want)
		}
	}
	for _, k := range []string{"token", "registrationUrl", "image", "command", "publicValue", "secretValue"} {
		if _, ok := tok[k]; ok {
			t.Errorf("created token has %s", k)
		}
	}
	if !regexp.MustCompile(`^1c\d+$`).MatchString(id) {
		t.Errorf("id = %q", id)
	}
	rt.clock.Add(1500 * time.Millisecond)
	_, tok = rt.do(t, "GET", "/v1/projects/1a5/registrationtokens/"+id, "", nil)
	if tok["state"] != "active" || tok["transitioning"] != "no" {
		t.Errorf("state after a moment = %v/%v", tok["state"], tok["transitioning"])
	}
	token := tok["token"].(string)
	if !regexp.MustCompile(`^[0-9A-F]{20}:1461744000000:[A-Za-z0-9]+$`).MatchString(token) {
		t.Errorf("token = %q", token)
	}
	// Through /v1/projects/1a5 the links, registrationUrl included, are the
	// project's (gdapi UrlBuilder on the request's base; cattle's docs show
	// http://<server>:8080/v1/projects/1a5/scripts/<token>).
	url := rt.srv.URL + "/v1/projects/1a5/scripts/" + token
	want := map[string]any{
		"registrationUrl": url, "image": "rancher/agent:v1.0.1",
		"command": "sudo docker run -d --privileged -v /var/run/docker.sock:/var/run/docker.sock -v /var/lib/rancher:/var/lib/rancher rancher/agent:v1.0.1 " + url,
	}
	for k, v := range want {
		if tok[k] != v {
			t.Errorf("%s = %v, want %v", k, tok[k], v)
		}
	}
	links := tok["links"].(map[string]any)
	if links["self"] != rt.srv.URL+"/v1/projects/1a5/registrationtokens/"+id || links["registrationUrl"] != url {
		t.Errorf("links = %v", links)
	}
	if diff := cmp.Diff(map[string]any{
		"deactivate": rt.srv.URL + "/v1/projects/1a5/registrationtokens/" + id + "/?action=deactivate",
		"update":     rt.srv.URL + "/v1/projects/1a5/registrationtokens/" + id + "/?action=update",
	}, tok["actions"]); diff != "" {
		t.Errorf("actions of an active token (-want +got):\n%s", diff)
	}

	// The setting bootstrap.required.image and the System HA certificate
	// change image and command: getOptions adds -e CA_FINGERPRINT="..."
	// with a trailing space, before the -v options.
	b, err := GenerateSelfSigned("https://10.213.0.4", testNow)
	if err != nil {
		t.Fatal(err)
	}
	rt.be.certs[certSystemSSL] = b
	rt.be.settings[SettingAgentImage] = "registry.example/agent:v1"
	fp, _ := CAFingerprint(b.Chain)
	_, tok = rt.do(t, "GET", "/v1/registrationtokens/"+id, "", nil)
	url = rt.srv.URL + "/v1/scripts/" + token
	wantCmd := `sudo docker run -d --privileged -e CA_FINGERPRINT="` + fp + `" -v /var/run/docker.sock:/var/run/docker.sock -v /var/lib/rancher:/var/lib/rancher registry.example/agent:v1 ` + url
	if tok["command"] != wantCmd || tok["registrationUrl"] != url || tok["image"] != "registry.example/agent:v1" {
		t.Errorf("with CA: command = %v\nwant      %v", tok["command"], wantCmd)
	}

	// The list envelope.
	_, list := rt.do(t, "GET", "/v1/projects/1a5/registrationtokens?state=active", "", nil)
	for k, v := range map[string]any{"type": "collection", "resourceType": "registrationToken"} {
		if list[k] != v {
			t.Errorf("list %s = %v", k, list[k])
		}
	}
	if data := list["data"].([]any); len(data) != 1 || data[0].(map[string]any)["id"] != id {
		t.Errorf("list data = %v", list["data"])
	}
	if ct := list["createTypes"].(map[string]any); ct["registrationToken"] != rt.srv.URL+"/v1/projects/1a5/registrationtokens" {
		t.Errorf("createTypes = %v", ct)
	}
	pg := list["pagination"].(map[string]any)
	if pg["limit"] != float64(100) || pg["partial"] != false || pg["next"] != nil {
		t.Errorf("pagination = %v", pg)
	}
	if f := list["filters"].(map[string]any); f["state"] == nil || f["name"] != nil {
		t.Errorf("filters = %v", f)
	}
}

// In HA cattle runs with DEFAULT_CATTLE_API_HOST = the Host Registration
// URL (cluster-manager v0.1.4 cluster_service.go line 200): the output
// filter then builds ServerContext.getHostApiBaseUrl + "/scripts/" + token
// (RegistrationTokenOutputFilter line 47), whatever URL the client used;
// an api.host without a scheme gets http:// (ServerContext line 56).
func TestRegistrationURLFromAPIHost(t *testing.T) {
	rt := newRegAPI(t)
	rt.api.APIHost = "https://10.213.0.4"
	tok := rt.newToken(t, "1a5")
	token := tok["token"].(string)
	if want := "https://10.213.0.4/v1/scripts/" + token; tok["registrationUrl"] != want {
		t.Errorf("registrationUrl = %v, want %v", tok["registrationUrl"], want)
	}
	// api.host is read from the settings cache, which a PUT refreshes once
	// it has answered (SettingsUtils.changeSetting).
	_, body := do(t, "PUT", rt.srv.URL+"/v1/settings/api.host", `{"value":"rancher.example:8080"}`, nil)
	if !strings.Contains(string(body), `"activeValue":"https://10.213.0.4"`) {
		t.Errorf("PUT api.host = %s", body)
	}
	_, tok = rt.do(t, "GET", "/v1/projects/1a5/registrationtokens/"+tok["id"].(string), "", nil)
	if want := "http://rancher.example:8080/v1/scripts/" + token; tok["registrationUrl"] != want {
		t.Errorf("registrationUrl = %v, want %v", tok["registrationUrl"], want)
	}
}

// RegisterScriptHandler: registration.sh with the token, CATTLE_URL
// (agent.instance.register.url, else the custom api.host's /v1, else this
// request's /v1) and the client's address (DefaultApiRequestParser: the
// first X-Forwarded-For, else the peer). A token that does not validate
// (RegistrationAuthTokenManagerImpl.validateToken) is a 404: Scripts found
// no handler. The token of an earlier hour stays valid for
// registration.token.period.millis.
func TestRegistrationScript(t *testing.T) {
	rt := newRegAPI(t)
	tok := rt.newToken(t, "1a5")
	token := tok["token"].(string)
	get := func(path string, hdr map[string]string) (int, string) {
		resp, b := do(t, "GET", rt.srv.URL+path, "", hdr)
		return resp.StatusCode, string(b)
	}
	code, body := get("/v1/scripts/"+token, map[string]string{"X-Forwarded-For": "10.213.2.1, 10.213.0.4"})
	want := "#!/bin/sh\n\nexport CATTLE_REGISTRATION_ACCESS_KEY=\"registrationToken\"\nexport CATTLE_REGISTRATION_SECRET_KEY=\"" + token +
		"\"\nexport CATTLE_URL=\"" + rt.srv.URL + "/v1\"\nexport DETECTED_CATTLE_AGENT_IP=\"10.213.2.1\"\n"
	if code != 200 || body != want {
		t.Errorf("script = %d\n%s\nwant\n%s", code, body, want)
	}
	if _, body := get("/v1/scripts/"+token, nil); !strings.Contains(body, `DETECTED_CATTLE_AGENT_IP="127.0.0.1"`) {
		t.Errorf("peer address not detected:\n%s", body)
	}
	rt.api.APIHost = "https://10.213.0.4"
	if _, body := get("/v1/scripts/"+token, nil); !strings.Contains(body, `CATTLE_URL="https://10.213.0.4/v1"`) {
		t.Errorf("CATTLE_URL with api.host:\n%s", body)
	}
	rt.be.settings[settingRegisterURL] = "http://override:8080/v1"
	if _, body := get("/v1/scripts/"+token, nil); !strings.Contains(body, `CATTLE_URL="http://override:8080/v1"`) {
		t.Errorf("CATTLE_URL with agent.instance.register.url:\n%s", body)
	}
	for _, bad := range []string{"nonsense", token + "x", strings.Replace(token, ":14617", ":14618", 1)} {
		if code, _ := get("/v1/scripts/"+bad, nil); code != 404 {
			t.Errorf("bad token %q = %d, want 404", bad, code)
		}
	}
	rt.clock.Add(2 * time.Hour)
	_, tok = rt.do(t, "GET", "/v1/registrationtokens/"+tok["id"].(string), "", nil)
	if tok["token"] == token {
		t.Error("the token shown did not change with the hour")
	}
	if code, _ := get("/v1/scripts/"+token, nil); code != 200 {
		t.Errorf("an earlier hour's token = %d, want 200", code)
	}
	// A token still registering, or deactivated, does not validate
	// (RegistrationTokenAuthDaoImpl: state active).
	code, c := rt.do(t, "POST", "/v1/registrationtokens/"+tok["id"].(string)+"/?action=deactivate", "", nil)
	if code != 202 || c["state"] != "deactivating" {
		t.Errorf("deactivate = %d %v", code, c["state"])
	}
	if code, _ := get("/v1/scripts/"+token, nil); code != 404 {
		t.Errorf("deactivated token = %d, want 404", code)
	}
}

// Generic processes (process/defaults.properties lines 86-92; credential
// without restore): an action a state does not offer is 422
// ActionNotAvailable, an unknown one 422 InvalidAction (ValidationHandler);
// registrationToken's resourceMethods are GET only.
func TestRegistrationTokenActions(t *testing.T) {
	rt := newRegAPI(t)
	id := rt.newToken(t, "1a5")["id"].(string)
	for _, c := range []struct {
		action string
		code   int
		want   string
	}{
		{"activate", 422, "ActionNotAvailable"},
		{"frobnicate", 422, "InvalidAction"},
		{"restore", 422, "InvalidAction"},
		{"deactivate", 202, "deactivating"},
	} {
		code, m := rt.do(t, "POST", "/v1/registrationtokens/"+id+"/?action="+c.action, "", nil)
		got := m["state"]
		if code >= 400 {
			got = m["code"]
			if m["fieldName"] != "action" {
				t.Errorf("%s: fieldName = %v", c.action, m["fieldName"])
			}
		}
		if code != c.code || got != c.want {
			t.Errorf("%s = %d %v, want %d %s", c.action, code, got, c.code, c.want)
		}
	}
	rt.clock.Add(2 * time.Second)
	_, m := rt.do(t, "GET", "/v1/registrationtokens/"+id, "", nil)
	if m["state"] != "inactive" {
		t.Errorf("state = %v", m["state"])
	}
	if code, _ := rt.do(t, "DELETE", "/v1/registrationtokens/"+id, "", nil); code != 405 {
		t.Errorf("DELETE = %d, want 405", code)
	}
}

// Scope (ApiAuthenticator.getAccountRequested): the admin without a
// project lists every account's tokens, its own too, which cattle made
// with the admin account (RegisterTokenAccountCreate, kinds admin,user);
// a project sees its own; a project key may not name another project (403).
func TestRegistrationTokenScope(t *testing.T) {
	rt := newRegAPI(t)
	rt.be.settings[settingProjectUUID] = "system-ha-abcd"
	rt.newToken(t, "1a5")
	accounts := func(path string, hdr map[string]string) []string {
		code, m := rt.do(t, "GET", path, "", hdr)
		if code != 200 {
			t.Fatalf("GET %s = %d %v", path, code, m)
		}
		var out []string
		for _, d := range m["data"].([]any) {
			out = append(out, d.(map[string]any)["accountId"].(string))
		}
		return out
	}
	if got := accounts("/v1/registrationtokens", nil); !cmp.Equal(got, []string{"1a1", "1a5"}) {
		t.Errorf("admin sees tokens of %v, want [1a1 1a5]", got)
	}
	if got := accounts("/v1/registrationtokens", map[string]string{"X-API-Project-Id": "1a7"}); len(got) != 0 {
		t.Errorf("System HA tokens = %v", got)
	}
	// An admin POST without a project makes a token of the admin account.
	if code, m := rt.do(t, "POST", "/v1/registrationtokens", "{}", nil); code != 201 || m["accountId"] != "1a1" {
		t.Errorf("admin POST = %d %v", code, m["accountId"])
	}
	_, k := rt.do(t, "POST", "/v1/apikeys", `{"accountId":"1a5"}`, nil)
	key := map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(k["publicValue"].(string)+":"+k["secretValue"].(string)))}
	if got := accounts("/v1/registrationtokens", key); !cmp.Equal(got, []string{"1a5"}) {
		t.Errorf("project key sees %v", got)
	}
	key["X-API-Project-Id"] = "1a7"
	if code, m := rt.do(t, "GET", "/v1/registrationtokens", "", key); code != 403 || m["code"] != "Forbidden" {
		t.Errorf("project key naming another project = %d %v", code, m)
	}
	if code, _ := rt.do(t, "GET", "/v1/registrationtokens?projectId=1a99", "", nil); code != 403 {
		t.Errorf("unknown project = %d, want 403", code)
	}
}

// ProjectResourceManager.createProject: the admin makes projects it is a
// member of (they list without all=true); a project key may not.
func TestCreateProject(t *testing.T) {
	rt := newRegAPI(t)
	code, p := rt.do(t, "POST", "/v1/projects", `{"name":"staging","description":"for tests"}`, nil)
	if code != 201 || p["name"] != "staging" || p["state"] != "registering" || p["description"] != "for tests" {
		t.Fatalf("POST /v1/projects = %d %v", code, p)
	}
	id := p["id"].(string)
	if code, _ := rt.do(t, "POST", "/v1/registrationtokens?projectId="+id, "{}", nil); code != 403 {
		t.Errorf("token of a registering project = %d, want 403", code)
	}
	rt.clock.Add(2 * time.Second)
	_, list := rt.do(t, "GET", "/v1/projects", "", nil)
	var names []string
	for _, d := range list["data"].([]any) {
		names = append(names, d.(map[string]any)["name"].(string))
	}
	if !cmp.Equal(names, []string{"Default", "staging"}) {
		t.Errorf("projects = %v", names)
	}
	links := rt.newToken(t, id)["links"].(map[string]any)
	if links["self"] == nil {
		t.Errorf("token of %s: %v", id, links)
	}
	_, k := rt.do(t, "POST", "/v1/apikeys", `{"accountId":"1a5"}`, nil)
	key := map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(k["publicValue"].(string)+":"+k["secretValue"].(string)))}
	if code, _ := rt.do(t, "POST", "/v1/projects", `{"name":"x"}`, key); code != 403 {
		t.Errorf("project key POST /v1/projects = %d, want 403", code)
	}
}

// HostApiPublicCAScriptHandler serves the chain as an attachment.
func TestCACertHeaders(t *testing.T) {
	rt := newRegAPI(t)
	b, err := GenerateSelfSigned("https://lb", testNow)
	if err != nil {
		t.Fatal(err)
	}
	rt.be.certs[certSystemSSL] = b
	resp, body := do(t, "GET", rt.srv.URL+"/v1/scripts/ca.crt", "", nil)
	if resp.Header.Get("Content-Type") != "application/octet-stream" || resp.Header.Get("Content-Disposition") != "attachment; filename=ca.crt" {
		t.Errorf("headers = %v", resp.Header)
	}
	if blk, _ := pem.Decode(body); blk == nil {
		t.Error("no PEM")
	} else if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
		t.Error(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Errorf("status %d", resp.StatusCode)
	}
}
