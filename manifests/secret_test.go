package manifests

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSensitiveNeverPrints(t *testing.T) {
	const value = "s3cr3t-Value"
	s := Sensitive(value)
	wrapped := struct {
		Password Sensitive
		Ptr      *Sensitive
	}{s, &s}
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("x", "pw", s)
	outputs := map[string]string{
		"%v":          fmt.Sprintf("%v", s),
		"%s":          fmt.Sprintf("%s", s),
		"%+v":         fmt.Sprintf("%+v", wrapped),
		"%#v":         fmt.Sprintf("%#v", wrapped),
		"%q":          fmt.Sprintf("%q", s),
		"%x":          fmt.Sprintf("%x", s),
		"%d":          fmt.Sprintf("%d", s),
		"Sprint":      fmt.Sprint(s, wrapped),
		"Errorf %w":   fmt.Errorf("connect: %w", fmt.Errorf("password %v rejected", s)).Error(),
		"errors.Join": errors.Join(fmt.Errorf("pw=%s", s)).Error(),
		"slog":        logged.String(),
	}
	for _, m := range []any{s, wrapped, []Sensitive{s}, map[string]Sensitive{"k": s}} {
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		outputs[fmt.Sprintf("json %T", m)] = string(b)
	}
	txt, err := s.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	outputs["MarshalText"] = string(txt)
	for name, out := range outputs {
		if strings.Contains(out, value) || strings.Contains(out, fmt.Sprintf("%x", value)) {
			t.Errorf("%s leaks the value: %s", name, out)
		}
		if !strings.Contains(out, "(sensitive)") {
			t.Errorf("%s = %q, want the mask", name, out)
		}
	}
	if s.Reveal() != value {
		t.Errorf("Reveal() = %q", s.Reveal())
	}
}

func TestSecretResolve(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("file-pw\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HAPLAN_TEST_SECRET", "env-pw\n")
	tests := []struct {
		name    string
		s       Secret
		want    string
		raw     string
		wantErr string
	}{
		{"file trims one line ending", Secret{File: pw}, "file-pw", "file-pw\r\n", ""},
		{"env", Secret{Env: "HAPLAN_TEST_SECRET"}, "env-pw", "env-pw\n", ""},
		{"env unset", Secret{Env: "HAPLAN_TEST_UNSET_X"}, "", "", "secret env:HAPLAN_TEST_UNSET_X: environment variable is not set: secret not set"},
		{"missing file", Secret{File: filepath.Join(dir, "nope")}, "", "", "secret file:" + filepath.Join(dir, "nope") + ": stat "},
		{"both", Secret{Env: "A", File: pw}, "", "", "both env and file are set"},
		{"empty", Secret{}, "", "", "secret: no env or file reference: secret not set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.s.Resolve()
			raw, rawErr := tt.s.ResolveRaw()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Resolve() error = %v, want %q", err, tt.wantErr)
				}
				var se *SecretError
				if !errors.As(err, &se) || rawErr == nil {
					t.Errorf("error %T is not a *SecretError (raw: %v)", err, rawErr)
				}
				return
			}
			if err != nil || rawErr != nil {
				t.Fatal(err, rawErr)
			}
			if diff := cmp.Diff([]string{tt.want, tt.raw}, []string{got.Reveal(), raw.Reveal()}); diff != "" {
				t.Errorf("values (-want +got):\n%s", diff)
			}
		})
	}
	if !errors.Is(mustErr(Secret{Env: "HAPLAN_TEST_UNSET_X"}.Resolve()), ErrSecretUnset) {
		t.Errorf("unset env is not ErrSecretUnset")
	}
}

func mustErr(_ Sensitive, err error) error { return err }

func TestSecretString(t *testing.T) {
	tests := []struct {
		name string
		s    Secret
		want string
		zero bool
	}{
		{"env", Secret{Env: "X"}, "env:X", false},
		{"file", Secret{File: "/a/b"}, "file:/a/b", false},
		{"zero", Secret{}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.s.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
			if got := tt.s.IsZero(); got != tt.zero {
				t.Errorf("IsZero() = %v, want %v", got, tt.zero)
			}
		})
	}
}

func TestClusterSecrets(t *testing.T) {
	dir := exampleDir(t)
	t.Setenv("HAPLAN_DB_PASSWORD", "db-secret-pw")
	t.Setenv("RANCHER_ACCESS_KEY", "ACCESSKEY0123")
	t.Setenv("RANCHER_SECRET_KEY", "secret-key-value-xyz")
	c := mustLoad(t, testLoader(), filepath.Join(dir, "cluster.yaml"))
	got, err := c.Secrets()
	if err != nil {
		t.Fatal(err)
	}
	var vals []string
	for _, s := range got {
		vals = append(vals, s.Reveal())
	}
	want := []string{"db-secret-pw", "admin-secret-pw",
		strings.TrimSpace(testTLS.key),
		"ACCESSKEY0123", "secret-key-value-xyz"}
	if diff := cmp.Diff(want, vals); diff != "" {
		t.Errorf("Secrets() (-want +got):\n%s", diff)
	}
	// Printing the cluster shows references, never values.
	out := fmt.Sprintf("%+v %#v", c, c)
	for _, v := range want {
		if strings.Contains(out, v) {
			t.Errorf("printing the cluster leaks %q", v)
		}
	}
	os.Unsetenv("HAPLAN_DB_PASSWORD")
	if _, err := c.Secrets(); !errors.Is(err, ErrSecretUnset) {
		t.Errorf("Secrets() with the env unset = %v, want ErrSecretUnset", err)
	}
}
