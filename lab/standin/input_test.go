package standin

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseScriptInput(t *testing.T) {
	withURL := func(f func(*ScriptInput)) ScriptInput {
		in := DefaultScriptInput()
		in.HostRegistrationURL = "https://lb.example"
		if f != nil {
			f(&in)
		}
		return in
	}
	tests := []struct {
		name        string
		query, body string
		ctype       string
		want        ScriptInput
		wantErr     *ValidationError
	}{
		{name: "json defaults", body: `{"hostRegistrationUrl":"https://lb.example"}`, ctype: "application/json", want: withURL(nil)},
		{name: "json any content type", body: `{"hostRegistrationUrl":"https://lb.example","clusterSize":1,"httpPort":8000}`, ctype: "text/plain",
			want: withURL(func(in *ScriptInput) { in.ClusterSize, in.HTTPPort = 1, 8000 })},
		{name: "json strings for ints", body: `{"hostRegistrationUrl":"https://lb.example","clusterSize":"5","swarmEnabled":false}`,
			want: withURL(func(in *ScriptInput) { in.ClusterSize, in.SwarmEnabled = 5, false })},
		{name: "json null keeps default", body: `{"hostRegistrationUrl":"https://lb.example","ppHttpPort":null}`, want: withURL(nil)},
		{name: "form", body: "hostRegistrationUrl=https%3A%2F%2Flb.example&clusterSize=1&CSRF=x", ctype: "application/x-www-form-urlencoded",
			want: withURL(func(in *ScriptInput) { in.ClusterSize = 1 })},
		{name: "json over query", query: "clusterSize=5&redisPort=7000", body: `{"hostRegistrationUrl":"https://lb.example","clusterSize":3}`,
			want: withURL(func(in *ScriptInput) { in.RedisPort = 7000 })},
		{name: "certs", body: `{"hostRegistrationUrl":"https://lb.example","cert":"C","key":"K","certChain":"CH"}`,
			want: withURL(func(in *ScriptInput) { in.Cert, in.Key, in.CertChain = "C", "K", "CH" })},
		{name: "missing url", body: `{"clusterSize":3}`, wantErr: &ValidationError{Code: "MissingRequired", Field: "hostRegistrationUrl"}},
		{name: "empty url", body: `{"hostRegistrationUrl":""}`, wantErr: &ValidationError{Code: "MissingRequired", Field: "hostRegistrationUrl"}},
		{name: "no body", wantErr: &ValidationError{Code: "MissingRequired", Field: "hostRegistrationUrl"}},
		{name: "cluster size zero", body: `{"hostRegistrationUrl":"https://x","clusterSize":0}`, wantErr: &ValidationError{Code: "MinLimitExceeded", Field: "clusterSize"}},
		{name: "bad int", body: `{"hostRegistrationUrl":"https://x","httpsPort":"abc"}`, wantErr: &ValidationError{Code: "InvalidFormat", Field: "httpsPort"}},
		{name: "port too big", body: `{"hostRegistrationUrl":"https://x","redisPort":70000}`, wantErr: &ValidationError{Code: "MaxLimitExceeded", Field: "redisPort"}},
		{name: "bad json", body: `{"hostRegistrationUrl":`, wantErr: &ValidationError{Code: "InvalidFormat", Field: "body"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := "/v1/haconfigs/haconfig/?action=createscript"
			if tt.query != "" {
				target += "&" + tt.query
			}
			r := httptest.NewRequest("POST", target, strings.NewReader(tt.body))
			if tt.ctype != "" {
				r.Header.Set("Content-Type", tt.ctype)
			}
			got, err := ParseScriptInput(r)
			if tt.wantErr != nil {
				var ve *ValidationError
				if !errors.As(err, &ve) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if diff := cmp.Diff(tt.wantErr, ve); diff != "" {
					t.Errorf("error (-want +got):\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("input (-want +got):\n%s", diff)
			}
		})
	}
}
