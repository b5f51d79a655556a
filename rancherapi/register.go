package rancherapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// Environments, registration tokens and hosts: what registering a host
// needs (docs/rancher-1.0-ha.md section 8; cattle v0.159.7
// code/implementation/register, resources/content/schema/base).

// Project is an environment ("project" in the v1 API).
type Project struct {
	ID, Name, UUID, State string
	Links                 map[string]string
}

// ErrNoEnvironment: no environment of that name (wrapped, naming it).
var ErrNoEnvironment = errors.New("no such environment")

type wireProject struct {
	wireResource
	Name string `json:"name"`
}

// Environments lists the live environments, never System HA. The list
// is read with all=true, as HAHosts does: an admin's API key sees only its
// member projects otherwise.
func (c *Client) Environments(ctx context.Context) ([]Project, error) {
	u := c.endpoint("/v1/projects") + "?all=true"
	raws, err := c.list(ctx, u)
	if err != nil {
		return nil, err
	}
	var out []Project
	for _, raw := range raws {
		var p wireProject
		if err := json.Unmarshal(raw, &p); err != nil {
			return nil, &ProtocolError{Method: http.MethodGet, URL: redactURL(u), Reason: "project is not an object", Err: err, Body: excerpt(raw)}
		}
		if gone(p.State) || strings.HasPrefix(p.UUID, "system-ha-") {
			continue
		}
		out = append(out, Project{ID: p.ID, Name: p.Name, UUID: p.UUID, State: p.State, Links: p.Links})
	}
	return out, nil
}

// Environment finds the environment named name (Environments). Two live
// environments of that name are an error: haplan would not know which one
// is meant.
func (c *Client) Environment(ctx context.Context, name string) (*Project, error) {
	all, err := c.Environments(ctx)
	if err != nil {
		return nil, err
	}
	return FindEnvironment(all, name)
}

// FindEnvironment picks the environment named name out of a list.
func FindEnvironment(all []Project, name string) (*Project, error) {
	var found []*Project
	for i := range all {
		if all[i].Name == name {
			found = append(found, &all[i])
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("environment %q: %w (create it in the UI under Environments, or name an existing one)", name, ErrNoEnvironment)
	case 1:
		return found[0], nil
	}
	ids := make([]string, len(found))
	for i, p := range found {
		ids[i] = p.ID
	}
	return nil, fmt.Errorf("environment %q is ambiguous: projects %s have that name; rename all but one", name, strings.Join(ids, ", "))
}

// RegistrationToken is a host registration token of an environment. Token
// and RegistrationURL are credentials: anyone holding them can add hosts
// to the environment. String never shows them.
type RegistrationToken struct {
	ID, State string
	Token     string
	// RegistrationURL is what the agent is started with:
	// <host registration URL>/v1/scripts/<token>.
	RegistrationURL string
	// Image is the agent image (setting bootstrap.required.image).
	Image string
	// Command is the registration command as the UI shows it (setting
	// docker.register.command); CAFingerprint is its CA_FINGERPRINT, the
	// SHA-1 of the cluster CA (DER), upper-case hex with colons; empty
	// when the command has none.
	Command, CAFingerprint string
	Links                  map[string]string
}

func (t RegistrationToken) String() string {
	return fmt.Sprintf("registration token %s (%s, image %s)", t.ID, t.State, t.Image)
}

// GoString keeps %#v from printing the token.
func (t RegistrationToken) GoString() string { return t.String() }

type wireToken struct {
	wireResource
	Token           string `json:"token"`
	RegistrationURL string `json:"registrationUrl"`
	Image           string `json:"image"`
	Command         string `json:"command"`
}

// fingerprintRE is the CA_FINGERPRINT option cattle puts in the command
// (RegistrationTokenOutputFilter.getOptions: -e CA_FINGERPRINT="<FP>").
var fingerprintRE = regexp.MustCompile(`-e CA_FINGERPRINT="([0-9A-F]{2}(?::[0-9A-F]{2}){19})"`)

func decodeToken(method, u string, raw json.RawMessage) (*RegistrationToken, error) {
	var w wireToken
	if err := json.Unmarshal(raw, &w); err != nil {
		return nil, &ProtocolError{Method: method, URL: redactURL(u), Reason: "registration token is not an object", Err: err}
	}
	t := &RegistrationToken{ID: w.ID, State: w.State, Token: w.Token, RegistrationURL: w.RegistrationURL,
		Image: w.Image, Command: w.Command, Links: w.Links}
	if m := fingerprintRE.FindStringSubmatch(w.Command); m != nil {
		t.CAFingerprint = m[1]
	}
	return t, nil
}

// tokensURL is the environment's registration token collection.
func (c *Client) tokensURL(p *Project) (string, error) {
	if l := p.Links["registrationTokens"]; l != "" {
		return c.follow(l)
	}
	return c.endpoint("/v1/projects/" + p.ID + "/registrationtokens"), nil
}

// RegistrationTokens lists the environment's tokens that are not removed.
func (c *Client) RegistrationTokens(ctx context.Context, p *Project) ([]RegistrationToken, error) {
	u, err := c.tokensURL(p)
	if err != nil {
		return nil, &ProtocolError{Method: http.MethodGet, URL: redactURL(u), Reason: "bad registrationTokens link", Err: err}
	}
	raws, err := c.list(ctx, u)
	if err != nil {
		return nil, err
	}
	var out []RegistrationToken
	for _, raw := range raws {
		t, err := decodeToken(http.MethodGet, u, raw)
		if err != nil {
			return nil, err
		}
		if !gone(t.State) {
			out = append(out, *t)
		}
	}
	return out, nil
}

// CreateRegistrationToken creates a token in the environment and waits
// (polling every every) until it is active: cattle creates it in
// "registering" (RegisterTokenCreate).
func (c *Client) CreateRegistrationToken(ctx context.Context, p *Project, every time.Duration) (*RegistrationToken, error) {
	u, err := c.tokensURL(p)
	if err != nil {
		return nil, &ProtocolError{Method: http.MethodPost, URL: redactURL(u), Reason: "bad registrationTokens link", Err: err}
	}
	r, err := c.do(ctx, http.MethodPost, u, map[string]any{})
	if err != nil {
		return nil, err
	}
	var raw json.RawMessage
	if err := r.decodeJSON(&raw); err != nil {
		return nil, err
	}
	t, err := decodeToken(http.MethodPost, u, raw)
	if err != nil {
		return nil, err
	}
	return c.waitToken(ctx, t, every)
}

// waitToken polls a token's self link until it is active.
func (c *Client) waitToken(ctx context.Context, t *RegistrationToken, every time.Duration) (*RegistrationToken, error) {
	self := t.Links["self"]
	for t.State != "active" {
		if gone(t.State) || self == "" {
			return nil, fmt.Errorf("registration token %s is %s, not active", t.ID, t.State)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("registration token %s still %s: %w", t.ID, t.State, ctx.Err())
		case <-time.After(every):
		}
		u, err := c.follow(self)
		if err != nil {
			return nil, &ProtocolError{Method: http.MethodGet, URL: redactURL(self), Reason: "bad self link", Err: err}
		}
		r, err := c.do(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, err
		}
		var raw json.RawMessage
		if err := r.decodeJSON(&raw); err != nil {
			return nil, err
		}
		if t, err = decodeToken(http.MethodGet, u, raw); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// ProjectHosts lists the hosts of an environment that are not removed,
// with their labels and addresses.
func (c *Client) ProjectHosts(ctx context.Context, p *Project) ([]Host, error) {
	return c.projectHosts(ctx, p.ID, p.Links)
}

// DeactivateHost asks cattle to deactivate h (its "deactivate" action),
// the first half of removing a host; the caller waits for "inactive".
func (c *Client) DeactivateHost(ctx context.Context, h Host) error {
	l := h.Actions["deactivate"]
	if l == "" {
		return fmt.Errorf("host %s (%s) cannot be deactivated while %s", h.ID, h.Hostname, h.State)
	}
	u, err := c.follow(l)
	if err != nil {
		return &ProtocolError{Method: http.MethodPost, URL: redactURL(l), Reason: "bad deactivate link", Err: err}
	}
	_, err = c.do(ctx, http.MethodPost, u, nil)
	return err
}

// DeleteHost deletes an inactive host (DELETE on its self link); cattle
// then moves it to removed, later purged.
func (c *Client) DeleteHost(ctx context.Context, h Host) error {
	l := h.Links["self"]
	if l == "" {
		return fmt.Errorf("host %s (%s) has no self link", h.ID, h.Hostname)
	}
	u, err := c.follow(l)
	if err != nil {
		return &ProtocolError{Method: http.MethodDelete, URL: redactURL(l), Reason: "bad self link", Err: err}
	}
	_, err = c.do(ctx, http.MethodDelete, u, nil)
	return err
}

// SetHostLabels sets a host's labels to exactly labels: PUT of its self
// link with {"labels": ...}. cattle v0.159.7 lets users update them
// (schema/user/user-auth.json "host.labels": "ru"), and its host.update
// process creates the new and changed ones and removes the others
// (process/host/HostCreateUpdate.java). It returns the host as answered.
func (c *Client) SetHostLabels(ctx context.Context, h Host, labels map[string]string) (*Host, error) {
	l := h.Links["self"]
	if l == "" {
		return nil, fmt.Errorf("host %s (%s) has no self link", h.ID, h.Hostname)
	}
	u, err := c.follow(l)
	if err != nil {
		return nil, &ProtocolError{Method: http.MethodPut, URL: redactURL(l), Reason: "bad self link", Err: err}
	}
	if labels == nil {
		labels = map[string]string{}
	}
	r, err := c.do(ctx, http.MethodPut, u, map[string]any{"labels": labels})
	if err != nil {
		return nil, err
	}
	var raw json.RawMessage
	if err := r.decodeJSON(&raw); err != nil {
		return nil, err
	}
	return c.decodeHost(ctx, http.MethodPut, u, raw)
}

// HostByID reads one host (to follow its state while it is removed).
// A host that is gone is returned with its state.
func (c *Client) HostByID(ctx context.Context, h Host) (*Host, error) {
	l := h.Links["self"]
	if l == "" {
		return nil, fmt.Errorf("host %s (%s) has no self link", h.ID, h.Hostname)
	}
	u, err := c.follow(l)
	if err != nil {
		return nil, &ProtocolError{Method: http.MethodGet, URL: redactURL(l), Reason: "bad self link", Err: err}
	}
	r, err := c.do(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	var raw json.RawMessage
	if err := r.decodeJSON(&raw); err != nil {
		return nil, err
	}
	return c.decodeHost(ctx, http.MethodGet, u, raw)
}

// Setting reads a setting's active value (GET /v1/settings/NAME). cattle
// answers a setting that is not in the database with the running server's
// value, both as value and as activeValue (ActiveSetting.getValue); a
// public setting such as rancher.server.image needs no admin.
func (c *Client) Setting(ctx context.Context, name string) (string, error) {
	r, err := c.do(ctx, http.MethodGet, c.endpoint("/v1/settings/"+name), nil)
	if err != nil {
		return "", err
	}
	var s struct {
		Value       *string `json:"value"`
		ActiveValue any     `json:"activeValue"`
	}
	if err := r.decodeJSON(&s); err != nil {
		return "", err
	}
	if v, ok := s.ActiveValue.(string); ok && v != "" {
		return v, nil
	}
	if s.Value != nil {
		return *s.Value, nil
	}
	return "", nil
}
