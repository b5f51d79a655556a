package manifests

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Secret is a reference to a secret value: exactly one of Env (an
// environment variable's name) and File (an absolute path). It never holds
// the value itself, so it may be printed and logged.
type Secret struct {
	Env, File string
}

// IsZero reports whether no reference is set.
func (s Secret) IsZero() bool { return s.Env == "" && s.File == "" }

// String returns "env:NAME" or "file:PATH" (or "" when unset).
func (s Secret) String() string {
	switch {
	case s.Env != "":
		return "env:" + s.Env
	case s.File != "":
		return "file:" + s.File
	}
	return ""
}

// ErrSecretUnset is matched (errors.Is) when a secret's environment
// variable is not set or the reference is empty. Not retried: the
// environment will not change under a running haplan.
var ErrSecretUnset = errors.New("secret not set")

// SecretError says which secret reference could not be read. It names the
// reference, never a value.
type SecretError struct {
	Ref string // Secret.String()
	Err error
}

func (e *SecretError) Error() string {
	if e.Ref == "" {
		return "secret: " + e.Err.Error()
	}
	return "secret " + e.Ref + ": " + e.Err.Error()
}

func (e *SecretError) Unwrap() error { return e.Err }

// Resolve reads the secret now (environment variable or file). One
// trailing line ending is removed, because password files written by
// `echo` or an editor end in a newline that is not part of the password;
// use ResolveRaw for the exact bytes.
func (s Secret) Resolve() (Sensitive, error) {
	v, err := s.ResolveRaw()
	if err != nil {
		return "", err
	}
	str := strings.TrimSuffix(v.Reveal(), "\n")
	return Sensitive(strings.TrimSuffix(str, "\r")), nil
}

// ResolveRaw reads the secret exactly as stored.
func (s Secret) ResolveRaw() (Sensitive, error) {
	return s.resolve(os.LookupEnv)
}

// maxSecretFile bounds a file a secret is read from: a password, an API
// key, a private key.
const maxSecretFile = 1 << 20

func (s Secret) resolve(lookupEnv func(string) (string, bool)) (Sensitive, error) {
	switch {
	case s.Env != "" && s.File != "":
		return "", &SecretError{Ref: s.String(), Err: errors.New("both env and file are set")}
	case s.Env != "":
		v, ok := lookupEnv(s.Env)
		if !ok {
			return "", &SecretError{Ref: s.String(), Err: fmt.Errorf("environment variable is not set: %w", ErrSecretUnset)}
		}
		return Sensitive(v), nil
	case s.File != "":
		b, err := readRegular(s.File, maxSecretFile)
		if err != nil {
			// The *PathError names the path only; its value cannot leak.
			return "", &SecretError{Ref: s.String(), Err: err}
		}
		return Sensitive(b), nil
	}
	return "", &SecretError{Err: fmt.Errorf("no env or file reference: %w", ErrSecretUnset)}
}

// Sensitive is a resolved secret value. Every way of printing or encoding
// it yields "(sensitive)"; Reveal returns the value for the one place that
// needs it (a MySQL driver, a file written 0600, stdin of a command).
type Sensitive string

const sensitiveMask = "(sensitive)"

// Reveal returns the secret value.
func (s Sensitive) Reveal() string { return string(s) }

// String returns a mask.
func (s Sensitive) String() string { return sensitiveMask }

// GoString returns a mask, for %#v.
func (s Sensitive) GoString() string { return sensitiveMask }

// Format prints a mask for every verb (%v %s %q %x %d ...).
func (s Sensitive) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte(sensitiveMask)) }

// MarshalJSON encodes a mask.
func (s Sensitive) MarshalJSON() ([]byte, error) { return json.Marshal(sensitiveMask) }

// MarshalText encodes a mask (also used by encoding/xml, slog and YAML).
func (s Sensitive) MarshalText() ([]byte, error) { return []byte(sensitiveMask), nil }

// Secrets resolves every secret the cluster references, for redaction of
// all output. Values are returned as Resolve gives them, without
// duplicates or empties.
func (c *Cluster) Secrets() ([]Sensitive, error) {
	refs := []Secret{c.Database.Password, c.Database.Admin.Password}
	if ct := c.Rancher.Certificate; ct != nil {
		// Only the key: the certificate and chain are public, and masking
		// them would hide harmless PEM that users need to see in diffs.
		refs = append(refs, ct.Key)
	}
	if k := c.Rancher.APIKey; k != nil {
		// Both halves: the access key is the user name of a credential
		// that works on its own wherever the secret leaked with it.
		refs = append(refs, k.AccessKey, k.SecretKey)
	}
	var out []Sensitive
	seen := map[string]bool{}
	var errs []error
	for _, r := range refs {
		if r.IsZero() {
			continue
		}
		v, err := r.Resolve()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if v == "" || seen[v.Reveal()] {
			continue
		}
		seen[v.Reveal()] = true
		out = append(out, v)
	}
	return out, errors.Join(errs...)
}
