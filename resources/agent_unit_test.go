package resources

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/haplan/haplan/layout"
	"github.com/haplan/haplan/plans"
	"github.com/haplan/haplan/rancherapi"
	"github.com/haplan/haplan/transport/transporttest"
)

// A node whose API answers /ping but not the database (its grant dropped:
// every new connection of the server is refused) does not make the
// cluster look down: the next node answers the read, and the plan says
// what that node's API says.
func TestClusterReadsFallBackToTheNextNode(t *testing.T) {
	r := newRig(t)
	for _, n := range []string{"rs1", "rs2", "rs3"} {
		r.holdScript(n, unitScript)
	}
	var rs1Reads int
	serveOn(t, r.host("rs1"), layout.HAAPIPort, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/ping" {
			w.Write([]byte("pong"))
			return
		}
		rs1Reads++
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		w.Write([]byte(`{"type":"error","status":500,"code":"java.sql.SQLException","message":"Access denied for user 'cattle'@'10.0.0.11'"}`))
	}))
	serveOn(t, r.host("rs2"), layout.HAAPIPort, defaultEnvAPI(nil, true))
	p := r.plan(r.graph("agent.token[Default]"))
	c := planned(t, p, "agent.token[Default]")
	if c.Action != plans.NoOp || c.Deferred || len(c.Warnings) != 0 {
		t.Errorf("agent.token: %s deferred=%v %q %q", c.Action, c.Deferred, c.Reason, c.Warnings)
	}
	if rs1Reads == 0 {
		t.Error("rs1's API was never asked: the test proves nothing")
	}
}

// When no node's API answers the read, the plan says each node's answer.
func TestClusterReadsNoNodeAnswers(t *testing.T) {
	r := newRig(t)
	for _, n := range []string{"rs1", "rs2", "rs3"} {
		r.holdScript(n, unitScript)
	}
	p := r.plan(r.graph("agent.token[Default]"))
	c := planned(t, p, "agent.token[Default]")
	if !c.Deferred || len(c.Warnings) != 1 {
		t.Fatalf("agent.token: %s deferred=%v %q %q", c.Action, c.Deferred, c.Reason, c.Warnings)
	}
	for _, n := range []string{"rs1: ", "rs2: ", "rs3: "} {
		if !strings.Contains(c.Warnings[0], n) {
			t.Errorf("warning %q does not name %s", c.Warnings[0], n)
		}
	}
}

// A CA on the host that is not the one the token's command pins is
// refused before anything starts, naming the host and both fingerprints;
// the pinned one passes; a missing one names cert.distribute.
func TestAgentRegisterRefusesAStaleCA(t *testing.T) {
	r := newRig(t)
	s, ok := r.steps["agent.register[h1]"].(*agentRegister)
	if !ok {
		t.Fatalf("no agent.register[h1] step: %v", r.steps)
	}
	stale, _ := selfSigned(t)
	cluster, _ := selfSigned(t)
	staleFP, _ := caFingerprint(stale)
	clusterFP, _ := caFingerprint(cluster)
	tok := &rancherapi.RegistrationToken{State: "active", Image: "rancher/agent:v1.0.1",
		RegistrationURL: "https://rancher.example.com/v1/scripts/ABC:123:xyz", CAFingerprint: clusterFP}
	h1 := r.host("h1")

	h1.On(transporttest.ReadOf(layout.CA)).Stdout(string(stale)).Once()
	err := s.checkToken(context.Background(), h1, tok)
	for _, want := range []string{"h1:", staleFP, clusterFP, "nothing was started"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("checkToken with a stale CA: %v, want it to say %q", err, want)
		}
	}

	h1.On(transporttest.ReadOf(layout.CA)).Stdout(string(cluster)).Once()
	if err := s.checkToken(context.Background(), h1, tok); err != nil {
		t.Errorf("checkToken with the pinned CA: %v", err)
	}

	h1.On(transporttest.ReadOf(layout.CA)).Absent().Once()
	if err := s.checkToken(context.Background(), h1, tok); err == nil || !strings.Contains(err.Error(), "cert.distribute") {
		t.Errorf("checkToken without a CA: %v, want it to name cert.distribute", err)
	}

	other := *tok
	other.RegistrationURL = "https://elsewhere.example.com/v1/scripts/ABC"
	if err := s.checkToken(context.Background(), h1, &other); err == nil || !strings.Contains(err.Error(), "api.host") {
		t.Errorf("checkToken of a token for another URL: %v, want the api.host hint", err)
	}
	if calls := mutating(h1.Calls()); len(calls) != 0 {
		t.Errorf("checkToken changed the host: %v", calls)
	}
}

func TestSomeNames(t *testing.T) {
	if got := someNames([]string{"h1", "h2"}, 5); got != "h1, h2" {
		t.Errorf("someNames of 2 = %q", got)
	}
	if got := someNames([]string{"h1", "h2", "h3", "h4"}, 2); got != "h1, h2 and 2 more" {
		t.Errorf("someNames of 4, at most 2 = %q", got)
	}
}

// Every node reads the same database: the same error from each is said
// once, and an API that answers is not called one that does not.
func TestClusterAPIError(t *testing.T) {
	e500 := func(node string) error {
		return fmt.Errorf("%s: %w", node, &rancherapi.APIError{Method: "GET", URL: "http://" + node + "/v1/x", Status: 500, Code: "ServerError", Message: "internal error"})
	}
	e401 := fmt.Errorf("rs3: %w", &rancherapi.APIError{Method: "GET", URL: "http://rs3/v1/x", Status: 401, Code: "Unauthorized"})
	down := errors.New("rs2: dial tcp: connection refused")
	cases := []struct {
		name string
		errs []error
		want string
	}{
		{"the same answer", []error{e500("rs1"), e500("rs2"), e500("rs3")}, "every node's API answers the same error: rs1: rancher API GET http://rs1/v1/x: HTTP 500 ServerError: internal error"},
		{"different answers", []error{e500("rs1"), e500("rs2"), e401}, "the cluster's API failed on every node: rs1: "},
		{"an answer and a node down", []error{e500("rs1"), down}, "the cluster's API failed on every node: rs1: "},
		{"no answer", []error{down}, "the cluster's API does not answer on any node: rs2: dial"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := clusterAPIError(tc.errs)
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("error %q, want it to start with %q", err, tc.want)
			}
			var ae *rancherapi.APIError
			if answered := !errors.Is(tc.errs[0], down); answered && !errors.As(err, &ae) {
				t.Errorf("error %q does not wrap the API's answer", err)
			}
		})
	}
}

// defaultEnvAPI serves a node's API with the environment Default, no
// hosts, and an active registration token when active (else none);
// tokenReads, when not nil, counts the token list's requests.
func defaultEnvAPI(tokenReads *atomic.Int32, active bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		base := "http://" + req.Host + "/v1/projects/1a5"
		collection := func(data ...any) {
			w.Header().Set("Content-Type", "application/json")
			if data == nil {
				data = []any{}
			}
			json.NewEncoder(w).Encode(map[string]any{"type": "collection", "data": data})
		}
		switch req.URL.Path {
		case "/ping":
			w.Write([]byte("pong"))
		case "/v1/projects":
			collection(map[string]any{"id": "1a5", "type": "project", "name": "Default", "uuid": "adminProject", "state": "active",
				"links": map[string]string{"self": base, "hosts": base + "/hosts", "registrationTokens": base + "/registrationtokens"}})
		case "/v1/projects/1a5/hosts":
			collection()
		case "/v1/projects/1a5/registrationtokens":
			if tokenReads != nil {
				tokenReads.Add(1)
			}
			if !active {
				collection()
				return
			}
			collection(map[string]any{"id": "1c1", "type": "registrationToken", "state": "active",
				"links": map[string]string{"self": base + "/registrationtokens/1c1"}})
		default:
			http.NotFound(w, req)
		}
	})
}

// The registrations of one apply start together: they share one reading
// of their environment and its token. A reading that found no token is
// not shared: each asks again, and says there is none.
func TestRegistrationsShareTheirEnvironmentsReading(t *testing.T) {
	for _, active := range []bool{true, false} {
		r := newRig(t)
		var reads atomic.Int32
		serveOn(t, r.host("rs1"), layout.HAAPIPort, defaultEnvAPI(&reads, active))
		const n = 20
		errs := make(chan error, n)
		for range n {
			go func() {
				reg, err := r.env.registration(context.Background(), "Default")
				if err == nil && (reg.token == nil || reg.token.ID != "1c1" || reg.env.Name != "Default" || reg.api == nil) {
					err = fmt.Errorf("registration = %+v", reg)
				}
				errs <- err
			}()
		}
		for range n {
			err := <-errs
			switch {
			case active && err != nil:
				t.Errorf("with a token: %v", err)
			case !active && (err == nil || !strings.Contains(err.Error(), `environment "Default" has no active registration token`)):
				t.Errorf("without a token: %v, want it to say there is none", err)
			}
		}
		switch got := reads.Load(); {
		case active && got != 1:
			t.Errorf("with a token: %d token readings for %d registrations, want 1", got, n)
		case !active && got < n:
			t.Errorf("without a token: %d token readings for %d registrations, want each to read again", got, n)
		}
	}
}
