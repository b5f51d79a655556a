package standin

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Backend is the persistent state the API reads and writes (*Store in
// production, a map in tests).
type Backend interface {
	Setting(ctx context.Context, name string) (string, bool, error)
	SetSetting(ctx context.Context, name, value string) error
	DeleteSetting(ctx context.Context, name string) error
	Certificate(ctx context.Context, name string) (CertBundle, bool, error)
}

// API serves the parts of cattle's v1 API that an HA install touches. The
// same handler serves the bootstrap server (8080) and every HA port.
type API struct {
	Store Backend
	// DB is the server's own database config: dbHost and the script's DB lines.
	DB  DBConfig
	Log *log.Logger
	// SettingsRefresh is how often the settings cache reloads on its own
	// (DefaultSettingsRefresh when zero).
	SettingsRefresh time.Duration
	// Registry keeps registration tokens, agents, registered hosts and
	// created projects; nil serves none of them.
	Registry Registry
	// APIHost is the default of setting api.host: the Host Registration
	// URL on an HA node, empty on the bootstrap server.
	APIHost string
	// Transition is how long a process shows its transitioning state
	// (DefaultTransition when zero).
	Transition time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time

	cacheOnce sync.Once
	cache     settingsCache
}

// DefaultTransition is how long the stand-in shows a process's
// transitioning state ("registering", "deactivating", "removing"...).
const DefaultTransition = time.Second

func (a *API) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

func (a *API) transition() time.Duration { return cmp.Or(a.Transition, DefaultTransition) }

// Project ids: the admin's Default project and the "System HA" project.
const (
	defaultProjectID  = "1a5"
	systemHAProjectID = "1a7"
)

// Handler returns the HTTP handler.
func (a *API) Handler() http.Handler {
	a.cacheOnce.Do(func() { a.cache.every = cmp.Or(a.SettingsRefresh, DefaultSettingsRefresh) })
	return a.withDeferred(a.withAuth(http.HandlerFunc(a.serve)))
}

func (a *API) serve(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimRight(strings.ToLower(r.URL.Path), "/")
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	switch {
	case path == "/ping":
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, "pong")
		return
	case path == "/healthcheck":
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, "{}")
		return
	case parts[0] != "v1":
		a.writeError(w, r, http.StatusNotFound, "NotFound", "")
		return
	}
	w.Header().Set("X-Api-Schemas", baseURL(r)+"/v1/schemas")
	rest := parts[1:]
	if len(rest) == 0 {
		a.onlyGet(w, r, a.root)
		return
	}
	caller := callerOf(r)
	if !caller.Admin {
		switch rest[0] {
		case "haconfigs", "settings", "localauthconfig", "localauthconfigs":
			// Admin-only types (admin-auth.json): not in a project's schemas.
			a.writeError(w, r, http.StatusNotFound, "NotFound", "")
			return
		}
	}
	// A registration token's account has the register schema only
	// (RegistrationTokenAccountLookup), an agent its own few types.
	allowed := map[string][]string{scopeRegister: {"register", "schemas"}, scopeAgent: {"publish", "schemas"}}
	if only, ok := allowed[caller.Scope]; ok && !slices.Contains(only, rest[0]) || !ok && rest[0] == "publish" {
		a.writeError(w, r, http.StatusNotFound, "NotFound", "")
		return
	}
	if a.Registry == nil {
		switch rest[0] {
		case "registrationtokens", "register", "publish":
			a.writeError(w, r, http.StatusNotFound, "NotFound", "")
			return
		}
	}
	switch rest[0] {
	case "haconfigs":
		a.haConfigs(w, r, rest[1:])
	case "settings":
		a.settings(w, r, rest[1:])
	case "projects":
		a.projects(w, r, rest[1:])
	case "apikeys":
		a.apiKeys(w, r, rest[1:])
	case "localauthconfig", "localauthconfigs":
		a.localAuthConfig(w, r)
	case "hosts":
		a.hostsRoute(w, r, rest[1:])
	case "registrationtokens":
		a.tokens(w, r, rest[1:])
	case "register":
		a.register(w, r, rest[1:])
	case "publish":
		a.publish(w, r)
	case "schemas":
		a.onlyGet(w, r, func(w http.ResponseWriter, r *http.Request) { a.schemas(w, r, rest[1:]) })
	case "scripts":
		switch {
		case len(rest) == 2 && rest[1] == "ca.crt":
			a.onlyGet(w, r, a.caCert)
		case len(rest) == 2:
			a.onlyGet(w, r, func(w http.ResponseWriter, r *http.Request) { a.registerScript(w, r, lastSegment(r)) })
		default:
			a.writeError(w, r, http.StatusNotFound, "NotFound", "")
		}
	default:
		a.writeError(w, r, http.StatusNotFound, "NotFound", "")
	}
}

// lastSegment is the request path's last segment as sent: routing uses
// the lower-cased path, a token is case-sensitive.
func lastSegment(r *http.Request) string {
	p := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	return p[len(p)-1]
}

func (a *API) onlyGet(w http.ResponseWriter, r *http.Request, h http.HandlerFunc) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		a.writeError(w, r, http.StatusMethodNotAllowed, "MethodNotAllowed", "")
		return
	}
	h(w, r)
}

func (a *API) root(w http.ResponseWriter, r *http.Request) {
	base := baseURL(r) + "/v1"
	links := map[string]string{"self": base}
	for _, c := range []string{"haConfigs", "haConfigInputs", "hosts", "projects", "registrationTokens", "schemas", "settings", "certificates", "environments"} {
		links[c] = base + "/" + strings.ToLower(c)
	}
	a.writeJSON(w, http.StatusOK, map[string]any{
		"id": "v1", "type": "apiVersion", "links": links, "actions": map[string]string{},
	})
}

// haConfig is the single haConfig resource.
type haConfig struct {
	ID          string            `json:"id"`
	Type        string            `json:"type"`
	BaseType    string            `json:"baseType"`
	Links       map[string]string `json:"links"`
	Actions     map[string]string `json:"actions"`
	ClusterSize int               `json:"clusterSize"`
	DBHost      string            `json:"dbHost"`
	DBSize      *int64            `json:"dbSize"`
	Enabled     bool              `json:"enabled"`
}

func (a *API) haConfig(ctx context.Context, r *http.Request) (haConfig, error) {
	self := baseURL(r) + "/v1/haconfigs/haconfig"
	c := haConfig{
		ID: "haConfig", Type: "haConfig", BaseType: "haConfig",
		Links:   map[string]string{"self": self, "dbdump": self + "/dbdump"},
		Actions: map[string]string{"createscript": self + "/?action=createscript"},
		DBHost:  a.DB.Host,
	}
	if v, ok, err := a.cache.get(ctx, a.Store, SettingClusterSize); err != nil {
		return haConfig{}, err
	} else if ok {
		c.ClusterSize, _ = strconv.Atoi(v)
	}
	enabled, err := a.enabled(ctx)
	if err != nil {
		return haConfig{}, err
	}
	c.Enabled = enabled
	if strings.EqualFold(c.DBHost, "localhost") {
		n := int64(-1) // no embedded MySQL to measure
		c.DBSize = &n
	}
	return c, nil
}

// enabled is ha.enabled as the cache holds it.
func (a *API) enabled(ctx context.Context) (bool, error) {
	v, _, err := a.cache.get(ctx, a.Store, SettingHAEnabled)
	if err != nil {
		return false, err
	}
	return v == "true", nil
}

func (a *API) haConfigs(w http.ResponseWriter, r *http.Request, rest []string) {
	ctx := r.Context()
	switch {
	case len(rest) == 0 && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		c, err := a.haConfig(ctx, r)
		if err != nil {
			a.internal(w, r, err)
			return
		}
		a.writeJSON(w, http.StatusOK, a.collection(r, "haConfig", "/v1/haconfigs", []haConfig{c}))
	case len(rest) == 1 && r.Method == http.MethodPost && r.URL.Query().Get("action") != "":
		if act := strings.ToLower(r.URL.Query().Get("action")); act != "createscript" {
			a.writeError(w, r, http.StatusNotFound, "InvalidAction", "")
			return
		}
		a.createScript(w, r)
	case len(rest) == 1 && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		c, err := a.haConfig(ctx, r)
		if err != nil {
			a.internal(w, r, err)
			return
		}
		a.writeJSON(w, http.StatusOK, c)
	case len(rest) == 1 && r.Method == http.MethodPut:
		a.updateHAConfig(w, r)
	case len(rest) == 2 && rest[1] == "dbdump":
		a.writeError(w, r, http.StatusInternalServerError, "ServerError", "dbdump needs the embedded database")
	default:
		a.writeError(w, r, http.StatusMethodNotAllowed, "MethodNotAllowed", "")
	}
}

func (a *API) updateHAConfig(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		a.writeError(w, r, http.StatusUnprocessableEntity, codeInvalidFormat, "")
		return
	}
	if v, ok := body["enabled"]; ok && v != nil {
		b, err := toBool(v)
		if err != nil {
			a.writeValidation(w, r, &ValidationError{Code: codeInvalidFormat, Field: "enabled"})
			return
		}
		if err := a.Store.SetSetting(r.Context(), SettingHAEnabled, strconv.FormatBool(b)); err != nil {
			a.internal(w, r, err)
			return
		}
		// cattle: SettingsUtils.changeSetting defers ArchaiusUtil.refresh
		// until the response is written, and updateInternal answers
		// getHaConfig() from the cache: the answer holds the old value.
		deferRefresh(r)
		if a.Log != nil {
			a.Log.Printf("Setting %s=%t", SettingHAEnabled, b)
		}
	}
	c, err := a.haConfig(r.Context(), r)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	a.writeJSON(w, http.StatusOK, c)
}

func (a *API) createScript(w http.ResponseWriter, r *http.Request) {
	in, err := ParseScriptInput(r)
	var ve *ValidationError
	if errors.As(err, &ve) {
		a.writeValidation(w, r, ve)
		return
	}
	if err != nil {
		a.internal(w, r, err)
		return
	}
	key, err := NewKey()
	if err != nil {
		a.internal(w, r, err)
		return
	}
	enc, err := Encrypt(key, a.DB.Password)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	script, err := RenderScript(ScriptData{Input: in, DB: a.DB, EncryptedPassword: enc, EncryptionKey: EncodeKey(key)})
	if errors.As(err, &ve) {
		a.writeValidation(w, r, ve)
		return
	}
	if err != nil {
		a.internal(w, r, err)
		return
	}
	ctx := r.Context()
	if err := a.Store.SetSetting(ctx, SettingClusterSize, strconv.Itoa(in.ClusterSize)); err != nil {
		a.internal(w, r, err)
		return
	}
	deferRefresh(r)
	// A new script is a new installation: the management stack has to be
	// launched again by a master that sees clusterSize hosts.
	if err := a.Store.DeleteSetting(ctx, settingStackLaunched); err != nil {
		a.internal(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", "attachment; filename=rancher-ha.sh")
	w.Header().Set("Content-Length", strconv.Itoa(len(script)))
	w.WriteHeader(http.StatusOK)
	w.Write(script)
}

// collection wraps data as a cattle collection.
func (a *API) collection(r *http.Request, resourceType, path string, data any) map[string]any {
	return a.collectionAt(r, resourceType, baseURL(r)+path, data)
}

// collectionAt is a collection whose self link is self.
func (a *API) collectionAt(r *http.Request, resourceType, self string, data any) map[string]any {
	return map[string]any{
		"type": "collection", "resourceType": resourceType,
		"links":       map[string]string{"self": self},
		"createTypes": map[string]string{}, "actions": map[string]string{},
		"data": data, "sortLinks": map[string]string{}, "pagination": nil,
		"sort": nil, "filters": map[string]any{}, "createDefaults": map[string]any{},
	}
}

func (a *API) writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encode response", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b)
}

// apiError is cattle's error resource.
type apiError struct {
	ID        string            `json:"id"`
	Type      string            `json:"type"`
	BaseType  string            `json:"baseType"`
	Links     map[string]string `json:"links"`
	Actions   map[string]string `json:"actions"`
	Status    int               `json:"status"`
	Code      string            `json:"code"`
	Message   *string           `json:"message"`
	Detail    *string           `json:"detail"`
	FieldName string            `json:"fieldName,omitempty"`
}

func (a *API) writeError(w http.ResponseWriter, r *http.Request, status int, code, message string) {
	e := apiError{ID: strconv.Itoa(status), Type: "error", BaseType: "error", Links: map[string]string{},
		Actions: map[string]string{}, Status: status, Code: code}
	if message != "" {
		e.Message = &message
	}
	a.writeJSON(w, status, e)
}

func (a *API) writeValidation(w http.ResponseWriter, r *http.Request, ve *ValidationError) {
	e := apiError{ID: "422", Type: "error", BaseType: "error", Links: map[string]string{},
		Actions: map[string]string{}, Status: http.StatusUnprocessableEntity, Code: ve.Code, FieldName: ve.Field}
	a.writeJSON(w, http.StatusUnprocessableEntity, e)
}

func (a *API) internal(w http.ResponseWriter, r *http.Request, err error) {
	if a.Log != nil {
		a.Log.Printf("API error on %s %s: %v", r.Method, r.URL.Path, err)
	}
	a.writeError(w, r, http.StatusInternalServerError, "ServerError", "internal error")
}

// baseURL is the scheme://host[:port] links are built from, honouring
// X-Forwarded-Proto/Host/Port as cattle's DefaultApiRequestParser does.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := firstHeader(r, "X-Forwarded-Proto"); p != "" {
		scheme = strings.ToLower(p)
	}
	host := r.Host
	if h := firstHeader(r, "X-Forwarded-Host"); h != "" {
		host = h
	}
	if p := firstHeader(r, "X-Forwarded-Port"); p != "" {
		name := host
		if h, _, err := net.SplitHostPort(host); err == nil {
			name = h
		}
		name = strings.TrimSuffix(strings.TrimPrefix(name, "["), "]")
		if (scheme == "http" && p == "80") || (scheme == "https" && p == "443") {
			host = name
			if strings.Contains(name, ":") {
				host = "[" + name + "]"
			}
		} else {
			host = net.JoinHostPort(name, p)
		}
	}
	return scheme + "://" + host
}

func firstHeader(r *http.Request, name string) string {
	v, _, _ := strings.Cut(r.Header.Get(name), ",")
	return strings.TrimSpace(v)
}
