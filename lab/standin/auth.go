package standin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// Access control, as cattle v0.159.7 does it:
//
//   - setting api.security.enabled (SecurityConstants.SECURITY_SETTING,
//     default false, read from the settings cache) switches it on; the
//     local-auth config (POST /v1/localauthconfig with enabled) sets it, as
//     does PUT /v1/settings/api.security.enabled;
//   - while it is off every request is the admin (AdminAuthLookUp), even
//     with a wrong key, unless it sends X-ENFORCE-AUTHENTICATION: true;
//   - while it is on, a /v1 request needs an API key pair over HTTP Basic
//     (BasicAuthImpl, AuthDaoImpl.getAccountByKeys) and answers 401 with a
//     WWW-Authenticate challenge (skipped for X-API-No-Challenge: true)
//     without one; /ping and /healthcheck (api.ignore.paths) and
//     /v1/scripts/... (handled before ApiAuthenticator) stay open;
//   - POST /v1/apikeys makes a key pair for the caller's account (or the
//     accountId an admin names): a 20-character upper-case hex access key
//     and a 40-character secret, answered once in clear and stored hashed
//     (ApiKeyFilter).
const (
	SettingSecurityEnabled = "api.security.enabled"
	settingAPIKeyPrefix    = "standin.apikey."
	adminAccountID         = "1a1"
	authRealm              = "Enter API access key and secret key as username and password"
)

// account is who a request runs as.
type account struct {
	ID    string
	Admin bool // holds the all.accounts policy option
	// Scope narrows the schema: "" (the account's own), scopeRegister for
	// a registration token (RegistrationTokenAccountLookup sets the
	// "register" schema), scopeAgent for an agent's key pair.
	Scope   string
	AgentID int64 // with scopeAgent
}

// Caller scopes.
const (
	scopeRegister = "register"
	scopeAgent    = "agent"
)

var adminAccount = account{ID: adminAccountID, Admin: true}

type accountKey struct{}

func callerOf(r *http.Request) account {
	if a, ok := r.Context().Value(accountKey{}).(account); ok {
		return a
	}
	return adminAccount
}

// authenticate finds the request's account; ok is false when it must be
// refused with a 401.
func (a *API) authenticate(r *http.Request) (account, bool, error) {
	on, _, err := a.cache.get(r.Context(), a.Store, SettingSecurityEnabled)
	if err != nil {
		return account{}, false, err
	}
	enforce := strings.EqualFold(r.Header.Get("X-ENFORCE-AUTHENTICATION"), "true")
	user, pass, hasKey := r.BasicAuth()
	if hasKey {
		for _, lookup := range []func(context.Context, string, string) (account, bool, error){
			a.lookupKey, a.lookupRegistrationToken, a.lookupAgentKey,
		} {
			if acct, found, err := lookup(r.Context(), user, pass); err != nil {
				return account{}, false, err
			} else if found {
				return acct, true, nil
			}
		}
	}
	if on == "true" || enforce {
		return account{}, false, nil
	}
	return adminAccount, true, nil
}

func (a *API) lookupKey(ctx context.Context, access, secret string) (account, bool, error) {
	v, ok, err := a.Store.Setting(ctx, settingAPIKeyPrefix+access)
	if err != nil || !ok {
		return account{}, false, err
	}
	id, hash, _ := strings.Cut(v, ":")
	sum := sha256.Sum256([]byte(secret))
	if subtle.ConstantTimeCompare([]byte(hash), []byte(hex.EncodeToString(sum[:]))) != 1 {
		return account{}, false, nil
	}
	return account{ID: id, Admin: id == adminAccountID}, true, nil
}

// lookupRegistrationToken is cattle's RegistrationTokenAccountLookup:
// user "registrationToken" and a valid token as the password authenticate
// as the token's account, with the register schema only.
func (a *API) lookupRegistrationToken(ctx context.Context, user, token string) (account, bool, error) {
	if user != kindRegistrationToken || a.Registry == nil {
		return account{}, false, nil
	}
	id, ok, err := a.validateRegistrationToken(ctx, token)
	if err != nil || !ok {
		return account{}, false, err
	}
	return account{ID: id, Scope: scopeRegister}, true, nil
}

// lookupAgentKey authenticates an agent by the key pair its register
// object handed out (an agentApiKey credential: account.by.key.credential.types
// lists it, so BasicAuthImpl takes it like an API key).
func (a *API) lookupAgentKey(ctx context.Context, access, secret string) (account, bool, error) {
	if a.Registry == nil {
		return account{}, false, nil
	}
	ags, err := a.Registry.Agents(ctx)
	if err != nil {
		return account{}, false, err
	}
	for _, ag := range ags {
		if ag.Access == access && subtle.ConstantTimeCompare([]byte(ag.Secret), []byte(secret)) == 1 {
			return account{ID: agentAccountID(ag.ID), Scope: scopeAgent, AgentID: ag.ID}, true, nil
		}
	}
	return account{}, false, nil
}

// openPath reports whether path is served without authentication.
// A project's /v1/projects/<id>/scripts/<token> (the registration URL a
// request through the project gets) is open too.
func openPath(path string) bool {
	if strings.HasPrefix(path, "/v1/projects/") {
		if p := strings.Split(path, "/"); len(p) > 4 && p[4] == "scripts" {
			return true
		}
	}
	return !strings.HasPrefix(path, "/v1") || strings.HasPrefix(path, "/v1/scripts/")
}

// withAuth refuses unauthenticated /v1 requests while access control is on
// and tells the handlers who is calling.
func (a *API) withAuth(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if openPath(strings.ToLower(r.URL.Path)) {
			h.ServeHTTP(w, r)
			return
		}
		acct, ok, err := a.authenticate(r)
		if err != nil {
			a.internal(w, r, err)
			return
		}
		if !ok {
			if !strings.EqualFold(r.Header.Get("X-API-No-Challenge"), "true") && !strings.EqualFold(r.Header.Get("Connection"), "upgrade") {
				w.Header().Set("WWW-Authenticate", fmt.Sprintf("Basic realm=%q", authRealm))
			}
			a.writeError(w, r, http.StatusUnauthorized, "Unauthorized", "Unauthorized")
			return
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), accountKey{}, acct)))
	})
}

// apiKeys serves POST /v1/apikeys.
func (a *API) apiKeys(w http.ResponseWriter, r *http.Request, rest []string) {
	if r.Method != http.MethodPost || len(rest) != 0 {
		a.writeError(w, r, http.StatusMethodNotAllowed, "MethodNotAllowed", "")
		return
	}
	var in struct {
		AccountID string `json:"accountId"`
		Name      string `json:"name"`
	}
	_ = json.NewDecoder(r.Body).Decode(&in)
	caller := callerOf(r)
	owner := caller.ID
	if in.AccountID != "" && caller.Admin { // accountId needs all.accounts
		owner = in.AccountID
	}
	pub := make([]byte, 10)
	sec := make([]byte, 30)
	if _, err := rand.Read(pub); err != nil {
		a.internal(w, r, err)
		return
	}
	if _, err := rand.Read(sec); err != nil {
		a.internal(w, r, err)
		return
	}
	access := strings.ToUpper(hex.EncodeToString(pub))
	secret := base64.StdEncoding.EncodeToString(sec)
	sum := sha256.Sum256([]byte(secret))
	if err := a.Store.SetSetting(r.Context(), settingAPIKeyPrefix+access, owner+":"+hex.EncodeToString(sum[:])); err != nil {
		a.internal(w, r, err)
		return
	}
	a.writeJSON(w, http.StatusCreated, map[string]any{
		"id": "1c" + access[:6], "type": "apiKey", "baseType": "credential", "kind": "apiKey", "name": in.Name,
		"accountId": owner, "publicValue": access, "secretValue": secret, "state": "active",
		"links": map[string]string{}, "actions": map[string]string{},
	})
}

// localAuthConfig serves POST /v1/localauthconfig: enabled switches
// access control on or off (LocalAuthConfigManager).
func (a *API) localAuthConfig(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		a.writeError(w, r, http.StatusMethodNotAllowed, "MethodNotAllowed", "")
		return
	}
	if !callerOf(r).Admin {
		a.writeError(w, r, http.StatusForbidden, "Forbidden", "")
		return
	}
	var in struct {
		Enabled  *bool  `json:"enabled"`
		Username string `json:"username"`
	}
	_ = json.NewDecoder(r.Body).Decode(&in)
	on := in.Enabled != nil && *in.Enabled
	if err := a.Store.SetSetting(r.Context(), SettingSecurityEnabled, fmt.Sprint(on)); err != nil {
		a.internal(w, r, err)
		return
	}
	deferRefresh(r)
	a.writeJSON(w, http.StatusCreated, map[string]any{
		"type": "localAuthConfig", "enabled": on, "username": in.Username, "accessMode": "unrestricted",
		"links": map[string]string{}, "actions": map[string]string{},
	})
}
