package standin

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
)

// project is a cattle project (environment).
type project struct {
	ID          string            `json:"id"`
	Type        string            `json:"type"`
	BaseType    string            `json:"baseType"`
	Kind        string            `json:"kind"`
	Name        string            `json:"name"`
	Description *string           `json:"description"`
	UUID        string            `json:"uuid"`
	State       string            `json:"state"`
	Links       map[string]string `json:"links"`
	Actions     map[string]string `json:"actions"`

	life lifecycle
	// member: the admin is a member (it made it); System HA belongs to
	// cluster-manager's service account.
	member bool
}

// ipAddress is a cattle ipAddress resource.
type ipAddress struct {
	ID       string            `json:"id"`
	Type     string            `json:"type"`
	BaseType string            `json:"baseType"`
	Kind     string            `json:"kind"`
	Address  string            `json:"address"`
	State    string            `json:"state"`
	Links    map[string]string `json:"links"`
	Actions  map[string]string `json:"actions"`
}

// included reports whether ?include= names link.
func included(r *http.Request, link string) bool {
	for _, v := range r.URL.Query()["include"] {
		for _, l := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(l), link) {
				return true
			}
		}
	}
	return false
}

// setting is cattle's activeSetting resource.
type setting struct {
	ID          string            `json:"id"`
	Type        string            `json:"type"`
	BaseType    string            `json:"baseType"`
	Name        string            `json:"name"`
	Value       *string           `json:"value"`
	ActiveValue *string           `json:"activeValue"`
	InDB        bool              `json:"inDb"`
	Source      *string           `json:"source"`
	Links       map[string]string `json:"links"`
	Actions     map[string]string `json:"actions"`
}

// projectRecords are the projects without links: Default, System HA once
// cluster-manager made it, and those created through POST /v1/projects.
func (a *API) projectRecords(ctx context.Context) ([]project, error) {
	mk := func(id, name, uuid string, life lifecycle, member bool) project {
		return project{ID: id, Type: "project", BaseType: "account", Kind: "project", Name: name, UUID: uuid,
			life: life, member: member}
	}
	out := []project{mk(defaultProjectID, "Default", "adminProject", lifecycle{State: "active"}, true)}
	uuid, ok, err := a.Store.Setting(ctx, settingProjectUUID)
	if err != nil {
		return nil, err
	}
	if ok {
		out = append(out, mk(systemHAProjectID, "System HA", uuid, lifecycle{State: "active"}, false))
	}
	if a.Registry != nil {
		ps, err := a.Registry.Projects(ctx)
		if err != nil {
			return nil, err
		}
		for _, p := range ps {
			x := mk("1a"+strconv.FormatInt(p.ID, 10), p.Name, p.UUID, p.Life, true)
			if p.Description != "" {
				d := p.Description
				x.Description = &d
			}
			out = append(out, x)
		}
	}
	return out, nil
}

// projectList renders the projects with their state at now and their
// links: one per listable type by its plural name
// (ProjectResourceManager.addLinks), of which the stand-in serves hosts,
// registrationTokens and schemas.
func (a *API) projectList(r *http.Request) ([]project, error) {
	ps, err := a.projectRecords(r.Context())
	if err != nil {
		return nil, err
	}
	base := baseURL(r) + "/v1/projects/"
	now := a.now()
	for i := range ps {
		p := &ps[i]
		p.State, _ = p.life.current(now)
		p.Links = map[string]string{"self": base + p.ID, "hosts": base + p.ID + "/hosts",
			"registrationTokens": base + p.ID + "/registrationtokens", "schemas": base + p.ID + "/schemas"}
		p.Actions = map[string]string{}
	}
	return ps, nil
}

func (a *API) projects(w http.ResponseWriter, r *http.Request, rest []string) {
	if len(rest) == 0 && r.Method == http.MethodPost {
		a.createProject(w, r)
		return
	}
	if len(rest) < 2 && r.Method != http.MethodGet && r.Method != http.MethodHead {
		a.writeError(w, r, http.StatusMethodNotAllowed, "MethodNotAllowed", "")
		return
	}
	ps, err := a.projectList(r)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	// A project (environment) API key authenticates as the project
	// itself: no all.accounts, and getAccessibleProjects returns only it.
	if caller := callerOf(r); !caller.Admin {
		var own []project
		for _, p := range ps {
			if p.ID == caller.ID {
				own = append(own, p)
			}
		}
		ps = own
	}
	if len(rest) == 0 {
		// cattle ProjectResourceManager.listInternal: without all=true (and
		// the all.accounts policy option, which the admin holds) the list
		// is the caller's member projects (AuthDaoImpl.getAccessibleProjects).
		// "System HA" is owned by cluster-manager's service account, so the
		// admin sees it only with all=true.
		if !strings.EqualFold(r.URL.Query().Get("all"), "true") && callerOf(r).Admin {
			ps = memberProjects(ps)
		}
		if ps == nil {
			ps = []project{}
		}
		a.writeJSON(w, http.StatusOK, a.collection(r, "project", "/v1/projects", ps))
		return
	}
	// By id, a project resolves for the admin whether or not it is a
	// member (AuthDaoImpl.isProjectMember is true for admins).
	for _, p := range ps {
		if p.ID != rest[0] {
			continue
		}
		pr := withProject(r, p.ID)
		switch {
		case len(rest) == 1:
			a.writeJSON(w, http.StatusOK, p)
		case rest[1] == "hosts":
			a.hostsRoute(w, pr, rest[2:])
		case rest[1] == "registrationtokens" && a.Registry != nil:
			a.tokens(w, pr, rest[2:])
		case rest[1] == "scripts" && len(rest) == 3 && rest[2] == "ca.crt":
			a.onlyGet(w, pr, a.caCert)
		case rest[1] == "scripts" && len(rest) == 3:
			a.onlyGet(w, pr, func(w http.ResponseWriter, r *http.Request) { a.registerScript(w, r, lastSegment(r)) })
		case rest[1] == "schemas":
			a.onlyGet(w, pr, func(w http.ResponseWriter, r *http.Request) { a.schemas(w, r, rest[2:]) })
		default:
			a.writeError(w, r, http.StatusNotFound, "NotFound", "")
		}
		return
	}
	a.writeError(w, r, http.StatusNotFound, "NotFound", "")
}

// createProject is POST /v1/projects: a project (environment) the admin
// owns, "registering" in the answer, then active
// (ProjectResourceManager.createProject; a project's own key is refused).
func (a *API) createProject(w http.ResponseWriter, r *http.Request) {
	caller := callerOf(r)
	if !caller.Admin {
		a.writeError(w, r, http.StatusForbidden, "Forbidden", "")
		return
	}
	if a.Registry == nil {
		a.writeError(w, r, http.StatusMethodNotAllowed, "MethodNotAllowed", "")
		return
	}
	var in struct {
		Name        string `json:"name"`
		Description string `json:"description"`
	}
	_ = json.NewDecoder(r.Body).Decode(&in)
	now := a.now()
	rec := ProjectRecord{Name: in.Name, Description: in.Description, UUID: newUUID(), Created: now.UnixMilli(),
		Life: newLifecycle(now, a.transition())}
	if err := a.Registry.AddProject(r.Context(), &rec); err != nil {
		a.internal(w, r, err)
		return
	}
	ps, err := a.projectList(r)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	for _, p := range ps {
		if p.ID == "1a"+strconv.FormatInt(rec.ID, 10) {
			a.writeJSON(w, http.StatusCreated, p)
			return
		}
	}
	a.internal(w, r, fmt.Errorf("created project %d not found", rec.ID))
}

// memberProjects keeps the projects the admin is a member of: its own
// Default project and those it created, not the service account's System HA.
func memberProjects(ps []project) []project {
	var out []project
	for _, p := range ps {
		if p.member {
			out = append(out, p)
		}
	}
	return out
}

// knownSettings are listed by GET /v1/settings.
var knownSettings = []string{SettingHAEnabled, SettingClusterSize, SettingServerImage}

// SettingServerImage is the running server's release: cattle fills it from
// the environment variable CATTLE_RANCHER_SERVER_IMAGE, which rancher
// v1.0.1 server/Dockerfile sets to the image's tag ("v1.0.1"); it is one
// of cattle's public settings (api-server defaults.properties
// settings.public). Not in the database, so value and activeValue are the
// running server's (ActiveSetting.getValue).
const SettingServerImage = "rancher.server.image"

func (a *API) settingResource(r *http.Request, name string) (setting, error) {
	s := setting{ID: name, Type: "activeSetting", BaseType: "activeSetting", Name: name,
		Links: map[string]string{"self": baseURL(r) + "/v1/settings/" + name}, Actions: map[string]string{}}
	v, ok, err := a.Store.Setting(r.Context(), name)
	if err != nil {
		return setting{}, err
	}
	if !ok && name == SettingHAEnabled {
		v, ok = "false", true
	}
	if ok {
		src := "Database"
		s.Value, s.ActiveValue, s.InDB, s.Source = &v, &v, true, &src
	} else if name == SettingServerImage {
		env, src := os.Getenv("CATTLE_RANCHER_SERVER_IMAGE"), "Environment Variables"
		s.Value, s.ActiveValue, s.Source = &env, &env, &src
	}
	// activeValue is what the server runs with: for cached settings, the
	// Archaius cache, which a write refreshes only after its response.
	for _, c := range cachedSettings {
		if c != name {
			continue
		}
		av, aok, err := a.cache.get(r.Context(), a.Store, name)
		if err != nil {
			return setting{}, err
		}
		if !aok && name == SettingHAEnabled {
			av, aok = "false", true
		}
		if (!aok || av == "") && name == SettingAPIHost && a.APIHost != "" {
			av, aok = a.APIHost, true // DEFAULT_CATTLE_API_HOST
		}
		s.ActiveValue = nil
		if aok {
			s.ActiveValue = &av
		}
	}
	return s, nil
}

func (a *API) settings(w http.ResponseWriter, r *http.Request, rest []string) {
	switch {
	case len(rest) == 0 && r.Method == http.MethodGet:
		names := append([]string(nil), knownSettings...)
		sort.Strings(names)
		out := make([]setting, 0, len(names))
		for _, n := range names {
			s, err := a.settingResource(r, n)
			if err != nil {
				a.internal(w, r, err)
				return
			}
			out = append(out, s)
		}
		a.writeJSON(w, http.StatusOK, a.collection(r, "activeSetting", "/v1/settings", out))
	case len(rest) == 1 && r.Method == http.MethodGet:
		s, err := a.settingResource(r, rest[0])
		if err != nil {
			a.internal(w, r, err)
			return
		}
		a.writeJSON(w, http.StatusOK, s)
	case len(rest) == 1 && r.Method == http.MethodPut:
		var body struct {
			Value *string `json:"value"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Value == nil {
			a.writeValidation(w, r, &ValidationError{Code: codeMissingRequired, Field: "value"})
			return
		}
		if err := a.Store.SetSetting(r.Context(), rest[0], *body.Value); err != nil {
			a.internal(w, r, err)
			return
		}
		deferRefresh(r)
		s, err := a.settingResource(r, rest[0])
		if err != nil {
			a.internal(w, r, err)
			return
		}
		a.writeJSON(w, http.StatusOK, s)
	default:
		a.writeError(w, r, http.StatusMethodNotAllowed, "MethodNotAllowed", "")
	}
}

// schemaNames are the schemas an HA install and joining hosts touch, with
// their collection methods (go-rancher's schemas.json of cattle v0.159.x:
// registrationToken GET, POST; host GET).
var schemaNames = []string{"activeSetting", "apiVersion", "certificate", "collection", "error", "haConfig", "haConfigInput", "host",
	"ipAddress", "project", "registrationToken"}

// scopedSchemas are the schemas of a registration token's register schema
// (register-auth.json) and of an agent.
var scopedSchemas = map[string][]string{
	scopeRegister: {"apiVersion", "collection", "error", "register", "schema"},
	scopeAgent:    {"apiVersion", "collection", "error", "publish", "schema"},
}

var collectionMethods = map[string][]string{
	"host": {"GET"}, "ipAddress": {"GET"}, "project": {"GET", "POST"}, "registrationToken": {"GET", "POST"},
	"register": {"GET", "POST"}, "publish": {"POST"},
}

func (a *API) schemas(w http.ResponseWriter, r *http.Request, rest []string) {
	base := linkBase(r) + "/schemas/"
	mk := func(n string) map[string]any {
		m := map[string]any{"id": n, "type": "schema", "links": map[string]string{"self": base + strings.ToLower(n)}}
		if cm, ok := collectionMethods[n]; ok {
			m["collectionMethods"] = cm
		}
		return m
	}
	names := schemaNames
	if s, ok := scopedSchemas[callerOf(r).Scope]; ok {
		names = s
	}
	if len(rest) == 0 {
		out := make([]map[string]any, 0, len(names))
		for _, n := range names {
			out = append(out, mk(n))
		}
		a.writeJSON(w, http.StatusOK, a.collectionAt(r, "schema", linkBase(r)+"/schemas", out))
		return
	}
	for _, n := range names {
		if strings.ToLower(n) == rest[0] {
			a.writeJSON(w, http.StatusOK, mk(n))
			return
		}
	}
	a.writeError(w, r, http.StatusNotFound, "NotFound", "")
}

// caCert serves the system-ssl CA chain once the cluster made one.
func (a *API) caCert(w http.ResponseWriter, r *http.Request) {
	b, ok, err := a.Store.Certificate(r.Context(), certSystemSSL)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	if !ok || len(b.Chain) == 0 {
		a.writeError(w, r, http.StatusNotFound, "NotFound", "")
		return
	}
	if blk, _ := pem.Decode(b.Chain); blk == nil {
		a.writeError(w, r, http.StatusNotFound, "NotFound", "")
		return
	}
	// HostApiPublicCAScriptHandler (cattle v0.159.7 host-api).
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", "attachment; filename=ca.crt")
	h.Set("Cache-Control", "private")
	h.Set("Pragma", "private")
	h.Set("Expires", "Wed 24 Feb 1982 18:42:00 GMT")
	w.Write(b.Chain)
}
