package rancherapi

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestAPIErrors(t *testing.T) {
	tests := []struct {
		name    string
		path    string
		handler http.HandlerFunc
		call    func(c *Client) error
		want    *APIError // URL is checked separately
	}{
		{
			name:    "500 with HTML page",
			path:    "/v1/haconfigs",
			handler: answer(500, "text/html", "<html><head><title>500 Internal Server Error</title></head><body>boom</body></html>"),
			call:    func(c *Client) error { _, err := c.HAConfig(context.Background()); return err },
			want:    &APIError{Method: "GET", Status: 500, Message: "500 Internal Server Error"},
		},
		{
			name:    "401 cattle error",
			path:    "/v1/haconfigs",
			handler: answer(401, "application/json", `{"id":"e1","type":"error","status":401,"code":"Unauthorized","message":"Unauthorized","detail":null}`),
			call:    func(c *Client) error { _, err := c.HAConfig(context.Background()); return err },
			want:    &APIError{Method: "GET", Status: 401, Code: "Unauthorized", Message: "Unauthorized"},
		},
		{
			name: "422 MissingRequired from createscript",
			call: func(c *Client) error {
				_, err := c.CreateScript(context.Background(), HAConfigInput{ClusterSize: 3})
				return err
			},
			want: &APIError{Method: "POST", Status: 422, Code: "MissingRequired", FieldName: "hostRegistrationUrl"},
		},
		{
			name:    "502 plain text",
			path:    "/ping",
			handler: answer(502, "text/plain", "Bad Gateway\n"),
			call:    func(c *Client) error { return c.Ping(context.Background()) },
			want:    &APIError{Method: "GET", Status: 502, Message: "Bad Gateway"},
		},
		{
			name:    "error JSON with non-string message",
			path:    "/v1/projects",
			handler: answer(503, "application/json", `{"type":"error","status":503,"code":"Busy","message":{"why":"db"}}`),
			call:    func(c *Client) error { _, err := c.HAHosts(context.Background()); return err },
			want:    &APIError{Method: "GET", Status: 503, Code: "Busy", Message: `{"why":"db"}`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, srv := newFake(t)
			if tt.handler != nil {
				f.set(tt.path, tt.handler)
			}
			err := tt.call(newClient(t, srv.URL))
			var ae *APIError
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v, want *APIError", err)
			}
			if !strings.HasPrefix(ae.URL, srv.URL+"/") {
				t.Errorf("URL = %q", ae.URL)
			}
			got := *ae
			got.URL = ""
			if diff := cmp.Diff(tt.want, &got); diff != "" {
				t.Errorf("APIError (-want +got):\n%s", diff)
			}
		})
	}
}

func TestProtocolErrors(t *testing.T) {
	haconfigs := func(c *Client) error { _, err := c.HAConfig(context.Background()); return err }
	tests := []struct {
		name       string
		path       string
		handler    http.HandlerFunc
		call       func(c *Client) error
		wantReason string
	}{
		{name: "ping answers something else", path: "/ping", handler: answer(200, "text/plain", "pang"),
			call: func(c *Client) error { return c.Ping(context.Background()) }, wantReason: `"pong"`},
		{name: "garbage JSON", path: "/v1/haconfigs", handler: answer(200, "application/json", `{"type":"collection","data":[{`),
			call: haconfigs, wantReason: "invalid JSON"},
		{name: "HTML with 200", path: "/v1/haconfigs", handler: answer(200, "text/html", "<html>login</html>"),
			call: haconfigs, wantReason: "content type"},
		{name: "not a collection", path: "/v1/haconfigs", handler: answer(200, "application/json", `{"type":"haConfig"}`),
			call: haconfigs, wantReason: "want a collection"},
		{name: "empty collection", path: "/v1/haconfigs", handler: answer(200, "application/json", `{"type":"collection","data":[]}`),
			call: haconfigs, wantReason: "empty"},
		{name: "wrong resource type", path: "/v1/haconfigs", handler: answer(200, "application/json", `{"type":"collection","data":[{"type":"host","enabled":true}]}`),
			call: haconfigs, wantReason: "want a haConfig"},
		{name: "data not a list", path: "/v1/haconfigs", handler: answer(200, "application/json", `{"type":"collection","data":{"a":1}}`),
			call: haconfigs, wantReason: "invalid JSON"},
		{name: "no createscript action", path: "/v1/haconfigs", handler: answer(200, "application/json", `{"type":"collection","data":[{"type":"haConfig","enabled":false,"actions":{}}]}`),
			call: func(c *Client) error {
				_, err := c.CreateScript(context.Background(), HAConfigInput{HostRegistrationURL: "https://lb"})
				return err
			}, wantReason: "no createscript"},
		{name: "createscript wrong content type", path: "/v1/haconfigs/haconfig/",
			handler: answer(200, "text/plain", "#!/bin/sh\nexport SECRET_KEY=abc\n"),
			call: func(c *Client) error {
				_, err := c.CreateScript(context.Background(), HAConfigInput{HostRegistrationURL: "https://lb"})
				return err
			}, wantReason: "application/octet-stream"},
		{name: "SetEnabled not honoured", path: "/v1/haconfigs/haconfig",
			handler: answer(200, "application/json", `{"id":"haConfig","type":"haConfig","enabled":false}`),
			call:    func(c *Client) error { _, err := c.SetEnabled(context.Background(), true); return err }, wantReason: "still says enabled=false"},
		{name: "project without hosts link", path: "/v1/projects",
			handler: answer(200, "application/json", `{"type":"collection","data":[{"id":"1a7","uuid":"system-ha-x","state":"active","links":{}}]}`),
			call:    func(c *Client) error { _, err := c.HAHosts(context.Background()); return err }, wantReason: "no hosts link"},
		{name: "project not an object", path: "/v1/projects",
			handler: answer(200, "application/json", `{"type":"collection","data":[42]}`),
			call:    func(c *Client) error { _, err := c.HAHosts(context.Background()); return err }, wantReason: "not an object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, srv := newFake(t)
			f.set(tt.path, tt.handler)
			err := tt.call(newClient(t, srv.URL))
			var pe *ProtocolError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want *ProtocolError", err)
			}
			if !strings.Contains(pe.Reason, tt.wantReason) {
				t.Errorf("Reason = %q, want it to mention %q", pe.Reason, tt.wantReason)
			}
			if strings.Contains(err.Error(), "SECRET_KEY") {
				t.Errorf("error echoes the script: %v", err)
			}
		})
	}
}

func TestWaitReady(t *testing.T) {
	f, srv := newFake(t)
	calls := 0
	f.set("/ping", func(w http.ResponseWriter, r *http.Request) {
		calls++
		if calls < 3 {
			answer(503, "text/plain", "starting")(w, r)
			return
		}
		answer(200, "text/plain", "pong")(w, r)
	})
	var progress []string
	err := newClient(t, srv.URL).WaitReady(context.Background(), time.Millisecond, func(_ time.Duration, err error) {
		var ae *APIError
		if errors.As(err, &ae) {
			progress = append(progress, ae.Message)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"starting", "starting"}, progress); diff != "" {
		t.Errorf("progress (-want +got):\n%s", diff)
	}
}

func TestWaitReadyGivesUp(t *testing.T) {
	f, srv := newFake(t)
	f.set("/ping", answer(200, "text/html", "<html>proxy page</html>"))
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	err := newClient(t, srv.URL).WaitReady(ctx, time.Millisecond, func(time.Duration, error) {
		if n++; n == 3 {
			cancel()
		}
	})
	var pe *ProtocolError
	if !errors.Is(err, context.Canceled) || !errors.As(err, &pe) {
		t.Fatalf("err = %v, want context.Canceled wrapping the last *ProtocolError", err)
	}
}

func TestConnectionRefused(t *testing.T) {
	_, srv := newFake(t)
	url := srv.URL
	srv.Close()
	err := newClient(t, url).Ping(context.Background())
	var ae *APIError
	var pe *ProtocolError
	if err == nil || errors.As(err, &ae) || errors.As(err, &pe) {
		t.Fatalf("err = %v, want a transport error", err)
	}
}
