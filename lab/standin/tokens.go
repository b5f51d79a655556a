package standin

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Registration tokens, as cattle v0.159.7 makes and shows them.
const (
	kindRegistrationToken = "registrationToken"
	// SettingAPIHost is api.host (ServerContext.HOST). In HA
	// cluster-manager starts cattle with DEFAULT_CATTLE_API_HOST set to
	// the Host Registration URL (cluster-manager v0.1.4
	// service/cluster_service.go line 200), its default there.
	SettingAPIHost = "api.host"
	// settingRegisterCommand is docker.register.command; its default is
	// system-services/defaults.properties line 134.
	settingRegisterCommand = "docker.register.command"
	defaultRegisterCommand = "sudo docker run -d --privileged %s-v /var/run/docker.sock:/var/run/docker.sock -v /var/lib/rancher:/var/lib/rancher %s %s"
	// settingRegisterURL is agent.instance.register.url (defaults.properties
	// line 138, empty): the CATTLE_URL the registration script names.
	settingRegisterURL = "agent.instance.register.url"
	// registrationTokenPeriod is registration.token.period.millis
	// (defaults.properties line 132): how long a token's hour stays valid.
	registrationTokenPeriod = 315360000000 * time.Millisecond
	adminAutoToken          = "account:" + adminAccountID
)

// generateKeys is cattle's ApiKeyFilter.generateKeys: a 20-character
// upper-case hex access key and the first 40 characters of 128 random
// bytes in base64 without [O0lI+/=] (process.credential.create.bad.characters).
func generateKeys() (access, secret string, err error) {
	pub := make([]byte, 10)
	sec := make([]byte, 128)
	if _, err := rand.Read(pub); err != nil {
		return "", "", err
	}
	if _, err := rand.Read(sec); err != nil {
		return "", "", err
	}
	s := regexp.MustCompile(`[O0lI+/=]`).ReplaceAllString(base64.StdEncoding.EncodeToString(sec), "")
	if len(s) < 40 {
		return "", "", fmt.Errorf("failed to create secretKey due to not enough good characters")
	}
	return strings.ToUpper(hex.EncodeToString(pub)), s[:40], nil
}

// registrationToken is cattle's RegistrationToken.createToken: access key,
// the start of the UTC hour in milliseconds, and the HMAC-SHA1 of those
// keyed with the secret, in base64 without [/=+]. The token a credential
// shows changes every hour; every earlier one stays valid for
// registrationTokenPeriod.
func registrationToken(access, secret string, at time.Time) string {
	prefix := fmt.Sprintf("%s:%d", access, at.UnixMilli())
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(prefix))
	sig := strings.NewReplacer("/", "", "=", "", "+", "").Replace(base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	return prefix + ":" + sig
}

// hourOf is the start of t's UTC hour (createToken zeroes minutes, seconds
// and milliseconds of a UTC Calendar).
func hourOf(t time.Time) time.Time { return t.UTC().Truncate(time.Hour) }

// validateRegistrationToken is RegistrationAuthTokenManagerImpl.validateToken:
// three parts, a time within the period, an active registration token
// credential with that access key whose token for that time is the one
// given, and an active account. It returns the account id.
func (a *API) validateRegistrationToken(ctx context.Context, tok string) (string, bool, error) {
	parts := strings.Split(tok, ":")
	if len(parts) != 3 {
		return "", false, nil
	}
	ms, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return "", false, nil
	}
	now := a.now()
	if now.UnixMilli() > ms+registrationTokenPeriod.Milliseconds() {
		return "", false, nil
	}
	cs, err := a.Registry.Credentials(ctx)
	if err != nil {
		return "", false, err
	}
	for _, c := range cs {
		if c.Kind != kindRegistrationToken || c.Public != parts[0] {
			continue
		}
		if st, _ := c.Life.current(now); st != "active" || c.Life.Removed != 0 {
			return "", false, nil
		}
		if !hmac.Equal([]byte(registrationToken(c.Public, c.Secret, time.UnixMilli(ms))), []byte(tok)) {
			return "", false, nil
		}
		ok, err := a.accountActive(ctx, c.AccountID)
		return c.AccountID, ok, err
	}
	return "", false, nil
}

// accountActive reports whether an account (the admin or a project) is active.
func (a *API) accountActive(ctx context.Context, id string) (bool, error) {
	if id == adminAccountID {
		return true, nil
	}
	ps, err := a.projectRecords(ctx)
	if err != nil {
		return false, err
	}
	for _, p := range ps {
		if p.ID == id {
			st, _ := p.life.current(a.now())
			return st == "active", nil
		}
	}
	return false, nil
}

// CAFingerprint is cattle's SslCertificateUtils.getCertificateFingerprint
// of the first certificate of a PEM chain, as getOptions writes it: the
// SHA-1 of its DER, hex pairs joined by ':', upper case.
func CAFingerprint(chain []byte) (string, bool) {
	blk, _ := pem.Decode(chain)
	if blk == nil {
		return "", false
	}
	if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
		return "", false
	}
	sum := sha1.Sum(blk.Bytes)
	pairs := make([]string, len(sum))
	for i, b := range sum {
		pairs[i] = fmt.Sprintf("%02X", b)
	}
	return strings.Join(pairs, ":"), true
}

// registerOptions is RegistrationTokenOutputFilter.getOptions: the
// CA_FINGERPRINT option, with its trailing space, when the System HA
// account has a certificate (CertificateDaoImpl.getPublicCA), else "".
func (a *API) registerOptions(ctx context.Context) (string, error) {
	b, ok, err := a.Store.Certificate(ctx, certSystemSSL)
	if err != nil || !ok {
		return "", err
	}
	fp, ok := CAFingerprint(b.Chain)
	if !ok {
		return "", nil
	}
	return `-e CA_FINGERPRINT="` + fp + `" `, nil
}

// apiHost is the api.host in force: the cached setting, else the default
// this server was started with (APIHost).
func (a *API) apiHost(ctx context.Context) (string, error) {
	v, ok, err := a.cache.get(ctx, a.Store, SettingAPIHost)
	if err != nil {
		return "", err
	}
	if !ok || strings.TrimSpace(v) == "" {
		v = a.APIHost
	}
	return strings.TrimSpace(v), nil
}

// hostAPIBase is ServerContext.getHostApiBaseUrl(HTTP) for a custom
// api.host: "http://" added when it has no scheme, then cattle.url.path
// (/v1). ok is false without a custom api.host.
func hostAPIBase(apiHost string) (string, bool) {
	if apiHost == "" {
		return "", false
	}
	if !strings.HasPrefix(apiHost, "http") {
		apiHost = "http://" + apiHost
	}
	return apiHost + "/v1", true
}

// registrationURL is what RegistrationTokenOutputFilter links: the custom
// api.host's /scripts/<token>, else this request's /v1/scripts/<token>.
func (a *API) registrationURL(r *http.Request, token string) (string, error) {
	h, err := a.apiHost(r.Context())
	if err != nil {
		return "", err
	}
	if base, ok := hostAPIBase(h); ok {
		return base + "/scripts/" + token, nil
	}
	return linkBase(r) + "/scripts/" + token, nil
}

// agentImage is setting bootstrap.required.image.
func (a *API) agentImage(ctx context.Context) (string, error) {
	v, ok, err := a.Store.Setting(ctx, SettingAgentImage)
	if err != nil {
		return "", err
	}
	if !ok || strings.TrimSpace(v) == "" {
		return DefaultAgentImage, nil
	}
	return strings.TrimSpace(v), nil
}

// tokenView is a registrationToken as a project (user-auth.json: token,
// registrationUrl, image, command readable; publicValue and secretValue
// hidden, admin-auth.json.d/register.json hides them from the admin too).
type tokenView struct {
	ID                    string            `json:"id"`
	Type                  string            `json:"type"`
	BaseType              string            `json:"baseType"`
	Kind                  string            `json:"kind"`
	Name                  *string           `json:"name"`
	Description           *string           `json:"description"`
	AccountID             string            `json:"accountId"`
	Created               string            `json:"created"`
	CreatedTS             int64             `json:"createdTS"`
	Removed               *string           `json:"removed"`
	State                 string            `json:"state"`
	Transitioning         string            `json:"transitioning"`
	TransitioningMessage  *string           `json:"transitioningMessage"`
	TransitioningProgress *int              `json:"transitioningProgress"`
	UUID                  string            `json:"uuid"`
	Token                 string            `json:"token,omitempty"`
	RegistrationURL       string            `json:"registrationUrl,omitempty"`
	Image                 string            `json:"image,omitempty"`
	Command               string            `json:"command,omitempty"`
	Links                 map[string]string `json:"links"`
	Actions               map[string]string `json:"actions"`
}

func isoTime(ms int64) string { return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05Z") }

func isoTimePtr(ms int64) *string {
	if ms == 0 {
		return nil
	}
	s := isoTime(ms)
	return &s
}

func transitioning(t bool) string {
	if t {
		return "yes"
	}
	return "no"
}

// tokenView renders c. fresh is the answer to the POST that created it:
// the create process has not generated the key pair yet (ApiKeyCreate runs
// in the part of the process scheduled after the answer), so the output
// filter adds no token, registrationUrl, image or command.
func (a *API) tokenView(r *http.Request, c Credential, fresh bool) (tokenView, error) {
	now := a.now()
	id := "1c" + strconv.FormatInt(c.ID, 10)
	self := linkBase(r) + "/registrationtokens/" + id
	st, tr := c.Life.current(now)
	v := tokenView{
		ID: id, Type: kindRegistrationToken, BaseType: "credential", Kind: kindRegistrationToken,
		AccountID: c.AccountID, Created: isoTime(c.Created), CreatedTS: c.Created, Removed: isoTimePtr(c.Life.Removed),
		State: st, Transitioning: transitioning(tr), UUID: c.UUID,
		Links: map[string]string{
			"self": self, "account": linkBase(r) + "/accounts/" + c.AccountID,
			"images": self + "/images", "instances": self + "/instances",
		},
		Actions: map[string]string{},
	}
	for _, act := range c.Life.actions(now, "restore") {
		v.Actions[act] = self + "/?action=" + act
	}
	if fresh {
		return v, nil
	}
	ctx := r.Context()
	v.Token = registrationToken(c.Public, c.Secret, hourOf(now))
	u, err := a.registrationURL(r, v.Token)
	if err != nil {
		return tokenView{}, err
	}
	img, err := a.agentImage(ctx)
	if err != nil {
		return tokenView{}, err
	}
	opts, err := a.registerOptions(ctx)
	if err != nil {
		return tokenView{}, err
	}
	format, ok, err := a.Store.Setting(ctx, settingRegisterCommand)
	if err != nil {
		return tokenView{}, err
	}
	if !ok || format == "" {
		format = defaultRegisterCommand
	}
	v.RegistrationURL, v.Image = u, img
	v.Command = fmt.Sprintf(format, opts, img, u)
	v.Links["registrationUrl"] = u
	return v, nil
}

// ensureAdminToken makes the token cattle gives the admin account when it
// is created (RegisterTokenAccountCreate for
// process.account.create.register.token.account.kinds=admin,user,
// system-services/defaults.properties line 133). Projects get none: the
// UI creates one when it finds none (ui v1.0.5 hosts/new/custom/route.js).
func (a *API) ensureAdminToken(ctx context.Context) error {
	access, secret, err := generateKeys()
	if err != nil {
		return err
	}
	c := Credential{AccountID: adminAccountID, Kind: kindRegistrationToken, Public: access, Secret: secret,
		UUID: newUUID(), Created: a.now().UnixMilli(), Life: lifecycle{State: "active"}, AutoKey: adminAutoToken}
	return a.Registry.AddCredential(ctx, &c)
}

// tokens serves /v1/registrationtokens[/<id>] in the request's scope.
func (a *API) tokens(w http.ResponseWriter, r *http.Request, rest []string) {
	sc, ok := a.scope(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	if err := a.ensureAdminToken(ctx); err != nil {
		a.internal(w, r, err)
		return
	}
	switch {
	case len(rest) == 0 && r.Method == http.MethodPost:
		a.createToken(w, r, sc)
	case len(rest) == 0 && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		cs, err := a.Registry.Credentials(ctx)
		if err != nil {
			a.internal(w, r, err)
			return
		}
		now := a.now()
		var views []any
		for _, c := range cs {
			if c.Kind != kindRegistrationToken || !sc.sees(c.AccountID) || !c.Life.listed(now) {
				continue
			}
			v, err := a.tokenView(r, c, false)
			if err != nil {
				a.internal(w, r, err)
				return
			}
			views = append(views, v)
		}
		a.writeList(w, r, "registrationToken", "/registrationtokens", views, tokenFilters,
			map[string]string{kindRegistrationToken: linkBase(r) + "/registrationtokens"})
	case len(rest) >= 1:
		c, found, err := a.findToken(ctx, sc, rest[0])
		if err != nil {
			a.internal(w, r, err)
			return
		}
		if !found {
			a.writeError(w, r, http.StatusNotFound, "NotFound", "")
			return
		}
		switch {
		case len(rest) == 1 && r.Method == http.MethodPost && r.URL.Query().Get("action") != "":
			next, err := c.Life.run(strings.ToLower(r.URL.Query().Get("action")), a.now(), a.transition(), "restore")
			if a.actionFailed(w, r, err) {
				return
			}
			if err := a.Registry.SetCredentialLife(ctx, c.ID, next); err != nil {
				a.internal(w, r, err)
				return
			}
			c.Life = next
			a.writeToken(w, r, http.StatusAccepted, c, false)
		case len(rest) == 1 && (r.Method == http.MethodGet || r.Method == http.MethodHead):
			a.writeToken(w, r, http.StatusOK, c, false)
		default:
			// registrationToken's resourceMethods are GET only.
			a.writeError(w, r, http.StatusMethodNotAllowed, "MethodNotAllowed", "")
		}
	default:
		a.writeError(w, r, http.StatusMethodNotAllowed, "MethodNotAllowed", "")
	}
}

// actionFailed answers a process that could not start as ValidationHandler
// does: InvalidAction for an action the type has not, ActionNotAvailable
// (both 422, fieldName "action") for one its state does not offer.
func (a *API) actionFailed(w http.ResponseWriter, r *http.Request, err error) bool {
	switch err {
	case nil:
		return false
	case errInvalidAction:
		a.writeValidation(w, r, &ValidationError{Code: "InvalidAction", Field: "action"})
	case errActionNotAvailable:
		a.writeValidation(w, r, &ValidationError{Code: "ActionNotAvailable", Field: "action"})
	default:
		a.internal(w, r, err)
	}
	return true
}

func (a *API) writeToken(w http.ResponseWriter, r *http.Request, status int, c Credential, fresh bool) {
	v, err := a.tokenView(r, c, fresh)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	a.writeJSON(w, status, v)
}

func (a *API) findToken(ctx context.Context, sc reqScope, id string) (Credential, bool, error) {
	n, ok := idNumber(id, "1c")
	if !ok {
		return Credential{}, false, nil
	}
	cs, err := a.Registry.Credentials(ctx)
	if err != nil {
		return Credential{}, false, err
	}
	for _, c := range cs {
		if c.ID == n && c.Kind == kindRegistrationToken && sc.sees(c.AccountID) {
			return c, true, nil
		}
	}
	return Credential{}, false, nil
}

// createToken is POST /v1/registrationtokens: a credential of the request's
// account; the admin may name another with accountId
// (AccountFieldPostInitHandler, all.accounts). Answered 201 in
// "registering", without the token fields.
func (a *API) createToken(w http.ResponseWriter, r *http.Request, sc reqScope) {
	var in struct {
		AccountID string `json:"accountId"`
	}
	_ = json.NewDecoder(r.Body).Decode(&in)
	owner := sc.account
	if sc.all {
		owner = adminAccountID
		if in.AccountID != "" {
			owner = in.AccountID
		}
	}
	access, secret, err := generateKeys()
	if err != nil {
		a.internal(w, r, err)
		return
	}
	now := a.now()
	c := Credential{AccountID: owner, Kind: kindRegistrationToken, Public: access, Secret: secret,
		UUID: newUUID(), Created: now.UnixMilli(), Life: newLifecycle(now, a.transition())}
	if err := a.Registry.AddCredential(r.Context(), &c); err != nil {
		a.internal(w, r, err)
		return
	}
	v, err := a.tokenView(r, c, true)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	a.writeJSON(w, http.StatusCreated, v)
}

// registrationScript is cattle v0.159.7
// code/implementation/register/src/main/resources/registration/registration.sh
// after RegisterScriptHandler's substitution.
const registrationScript = `#!/bin/sh

export CATTLE_REGISTRATION_ACCESS_KEY="%s"
export CATTLE_REGISTRATION_SECRET_KEY="%s"
export CATTLE_URL="%s"
export DETECTED_CATTLE_AGENT_IP="%s"
`

// registerScript serves GET /v1/scripts/<token> (RegisterScriptHandler): a
// token that does not validate is a 404 (Scripts: no handler took it).
// CATTLE_URL is agent.instance.register.url, else the custom api.host's
// /v1, else this request's /v1; DETECTED_CATTLE_AGENT_IP is the client's
// address (DefaultApiRequestParser.parseClientIp: the first
// X-Forwarded-For entry, else the peer).
func (a *API) registerScript(w http.ResponseWriter, r *http.Request, tok string) {
	if a.Registry == nil {
		a.writeError(w, r, http.StatusNotFound, "NotFound", "")
		return
	}
	ctx := r.Context()
	_, ok, err := a.validateRegistrationToken(ctx, tok)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	if !ok {
		a.writeError(w, r, http.StatusNotFound, "NotFound", "")
		return
	}
	u, set, err := a.Store.Setting(ctx, settingRegisterURL)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	if !set || strings.TrimSpace(u) == "" {
		h, err := a.apiHost(ctx)
		if err != nil {
			a.internal(w, r, err)
			return
		}
		var custom bool
		if u, custom = hostAPIBase(h); !custom {
			u = baseURL(r) + "/v1"
		}
	}
	w.Header().Set("Content-Type", "text/plain")
	fmt.Fprintf(w, registrationScript, kindRegistrationToken, tok, u, clientIP(r))
}

// clientIP is DefaultApiRequestParser.parseClientIp.
func clientIP(r *http.Request) string {
	if f := firstHeader(r, "X-Forwarded-For"); f != "" {
		return f
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
