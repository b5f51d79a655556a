package standin

import (
	"context"
	"net/http"
	"strconv"
)

// Which account's resources a request sees, as cattle v0.159.7 decides it
// (ApiAuthenticator.getAccountRequested): the project named by the
// X-API-Project-Id header, else the projectId parameter, else the project
// of a /v1/projects/<id>/... URL; without one, the authenticated account
// itself. A project that is not found, not active or not accessible is a
// 403 (the admin may use any: AuthDaoImpl.hasAccessToProject with
// all.accounts). With a project the request runs as that project;
// without one the admin lists every account's resources
// (account.type.admin.list.all.accounts=true, iaas-api/defaults.properties
// line 45; AbstractJooqResourceManager.addAccountAuthorization).
const projectHeader = "X-API-Project-Id"

type scopeKey struct{}

// reqScope is the account a request's lists are limited to; all means no
// limit (the admin without a project).
type reqScope struct {
	all     bool
	account string
}

func (s reqScope) sees(accountID string) bool { return s.all || s.account == accountID }

// withProject runs the rest of the request in project id's scope (a
// /v1/projects/<id>/... URL).
func withProject(r *http.Request, id string) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), scopeKey{}, id))
}

// linkBase is where the request's links start: the API version URL, or a
// project's when the request came through /v1/projects/<id>/ (gdapi's
// UrlBuilder builds on the request's base: cattle's docs show registration
// URLs like http://server:8080/v1/projects/1a5/scripts/<token>).
func linkBase(r *http.Request) string {
	if id, _ := r.Context().Value(scopeKey{}).(string); id != "" {
		return baseURL(r) + "/v1/projects/" + id
	}
	return baseURL(r) + "/v1"
}

// agentAccountID is the id of an agent's own account (kind agent).
func agentAccountID(agentID int64) string { return "1a" + strconv.FormatInt(100000+agentID, 10) }

// scope resolves the request's scope; ok is false when it answered 403.
func (a *API) scope(w http.ResponseWriter, r *http.Request) (reqScope, bool) {
	caller := callerOf(r)
	id := r.Header.Get(projectHeader)
	if id == "" {
		id = r.URL.Query().Get("projectId")
	}
	if id == "" {
		id, _ = r.Context().Value(scopeKey{}).(string)
	}
	if id == "" || id == caller.ID {
		if caller.Admin {
			return reqScope{all: true}, true
		}
		return reqScope{account: caller.ID}, true
	}
	ps, err := a.projectList(r)
	if err != nil {
		a.internal(w, r, err)
		return reqScope{}, false
	}
	now := a.now()
	for _, p := range ps {
		if p.ID != id {
			continue
		}
		if st, _ := p.life.current(now); st != "active" || !caller.Admin {
			break
		}
		return reqScope{account: id}, true
	}
	a.writeError(w, r, http.StatusForbidden, "Forbidden", "")
	return reqScope{}, false
}
