package rancherapi

import (
	"errors"
	"testing"
)

// FuzzDecode feeds arbitrary bodies to every decoder: each must return a
// result or a typed error, never panic.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"type":"collection","data":[{"id":"haConfig","type":"haConfig","enabled":true,"clusterSize":3,"actions":{"createscript":"/x"}}]}`,
		`{"type":"collection","data":[]}`,
		`{"type":"error","status":422,"code":"MissingRequired","fieldName":"hostRegistrationUrl"}`,
		`<html><title>x</title></html>`,
		"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
		`{"type":"collection","data":null}`,
		"\xff\xfe",
	} {
		f.Add([]byte(s), 200)
	}
	f.Fuzz(func(t *testing.T, body []byte, status int) {
		r := &response{method: "GET", url: "http://x/v1/haconfigs", status: status, ctype: "application/json", body: body}
		hc, err := decodeHAConfigs(r)
		var pe *ProtocolError
		if err != nil && !errors.As(err, &pe) {
			t.Fatalf("decodeHAConfigs error is not a *ProtocolError: %v", err)
		}
		if err == nil && hc.Type != "haConfig" {
			t.Fatalf("decodeHAConfigs accepted type %q", hc.Type)
		}
		if _, err := caChain(r); err != nil && !errors.As(err, &pe) {
			t.Fatalf("caChain error is not a *ProtocolError: %v", err)
		}
		ae := newAPIError("GET", "http://x/", status, body)
		_ = ae.Error()
		if len(ae.Message) > 4*excerptLen {
			t.Fatalf("APIError message not bounded: %d bytes", len(ae.Message))
		}
		_ = r.protocolError("x", nil).Error()
	})
}
