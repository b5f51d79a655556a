package standin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// ScriptInput is cattle's haConfigInput with the defaults its validator
// fills in (HaConfigInput.java).
type ScriptInput struct {
	ClusterSize         int    `json:"clusterSize"`
	HTTPPort            int    `json:"httpPort"`
	HTTPSPort           int    `json:"httpsPort"`
	PPHTTPPort          int    `json:"ppHttpPort"`
	PPHTTPSPort         int    `json:"ppHttpsPort"`
	RedisPort           int    `json:"redisPort"`
	SwarmPort           int    `json:"swarmPort"`
	ZookeeperClientPort int    `json:"zookeeperClientPort"`
	ZookeeperQuorumPort int    `json:"zookeeperQuorumPort"`
	ZookeeperLeaderPort int    `json:"zookeeperLeaderPort"`
	Cert                string `json:"cert"`
	CertChain           string `json:"certChain"`
	Key                 string `json:"key"`
	HostRegistrationURL string `json:"hostRegistrationUrl"`
	HTTPEnabled         bool   `json:"httpEnabled"`
	SwarmEnabled        bool   `json:"swarmEnabled"`
}

// DefaultScriptInput returns the defaults of every optional field.
func DefaultScriptInput() ScriptInput {
	return ScriptInput{
		ClusterSize: 3, HTTPPort: 80, HTTPSPort: 443, PPHTTPPort: 81, PPHTTPSPort: 444,
		RedisPort: 6379, SwarmPort: 2376, ZookeeperClientPort: 2181,
		ZookeeperQuorumPort: 2888, ZookeeperLeaderPort: 3888,
		HTTPEnabled: true, SwarmEnabled: true,
	}
}

// ValidationError is a cattle-style 422 API error for one field.
type ValidationError struct {
	Code  string // MissingRequired, InvalidFormat, MinLimitExceeded, MaxLimitExceeded
	Field string
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("validation failed: %s: %s", e.Field, e.Code)
}

// Cattle's ValidationErrorCodes used here.
const (
	codeMissingRequired = "MissingRequired"
	codeInvalidFormat   = "InvalidFormat"
	codeMinLimit        = "MinLimitExceeded"
	codeMaxLimit        = "MaxLimitExceeded"
)

// ParseScriptInput reads createscript input the way cattle's
// BodyParserRequestHandler does: query parameters, then form fields, then a
// JSON object body (whatever the Content-Type) merged over them. Missing
// fields get their defaults; the result is validated.
func ParseScriptInput(r *http.Request) (ScriptInput, error) {
	raw := map[string]any{}
	for k, v := range r.URL.Query() {
		raw[k] = v[len(v)-1]
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return ScriptInput{}, fmt.Errorf("read request body: %w", err)
	}
	trimmed := strings.TrimSpace(string(body))
	switch {
	case strings.HasPrefix(trimmed, "{"):
		var obj map[string]any
		dec := json.NewDecoder(strings.NewReader(trimmed))
		dec.UseNumber()
		if err := dec.Decode(&obj); err != nil {
			return ScriptInput{}, &ValidationError{Code: codeInvalidFormat, Field: "body"}
		}
		for k, v := range obj {
			raw[k] = v
		}
	case trimmed != "":
		form, err := url.ParseQuery(trimmed)
		if err != nil {
			return ScriptInput{}, &ValidationError{Code: codeInvalidFormat, Field: "body"}
		}
		for k, v := range form {
			raw[k] = v[len(v)-1]
		}
	}
	return scriptInputFromMap(raw)
}

func scriptInputFromMap(raw map[string]any) (ScriptInput, error) {
	in := DefaultScriptInput()
	ints := []struct {
		name string
		dst  *int
		min  int
		max  int
	}{
		{"clusterSize", &in.ClusterSize, 1, 1 << 30},
		{"httpPort", &in.HTTPPort, 1, 65535},
		{"httpsPort", &in.HTTPSPort, 1, 65535},
		{"ppHttpPort", &in.PPHTTPPort, 1, 65535},
		{"ppHttpsPort", &in.PPHTTPSPort, 1, 65535},
		{"redisPort", &in.RedisPort, 1, 65535},
		{"swarmPort", &in.SwarmPort, 1, 65535},
		{"zookeeperClientPort", &in.ZookeeperClientPort, 1, 65535},
		{"zookeeperQuorumPort", &in.ZookeeperQuorumPort, 1, 65535},
		{"zookeeperLeaderPort", &in.ZookeeperLeaderPort, 1, 65535},
	}
	for _, f := range ints {
		v, ok := raw[f.name]
		if !ok || v == nil {
			continue
		}
		n, err := toInt(v)
		if err != nil {
			return ScriptInput{}, &ValidationError{Code: codeInvalidFormat, Field: f.name}
		}
		if n < f.min {
			return ScriptInput{}, &ValidationError{Code: codeMinLimit, Field: f.name}
		}
		if n > f.max {
			return ScriptInput{}, &ValidationError{Code: codeMaxLimit, Field: f.name}
		}
		*f.dst = n
	}
	strs := []struct {
		name string
		dst  *string
	}{
		{"cert", &in.Cert}, {"certChain", &in.CertChain}, {"key", &in.Key},
		{"hostRegistrationUrl", &in.HostRegistrationURL},
	}
	for _, f := range strs {
		v, ok := raw[f.name]
		if !ok || v == nil {
			continue
		}
		s, ok := v.(string)
		if !ok {
			return ScriptInput{}, &ValidationError{Code: codeInvalidFormat, Field: f.name}
		}
		*f.dst = s
	}
	bools := []struct {
		name string
		dst  *bool
	}{{"httpEnabled", &in.HTTPEnabled}, {"swarmEnabled", &in.SwarmEnabled}}
	for _, f := range bools {
		v, ok := raw[f.name]
		if !ok || v == nil {
			continue
		}
		b, err := toBool(v)
		if err != nil {
			return ScriptInput{}, &ValidationError{Code: codeInvalidFormat, Field: f.name}
		}
		*f.dst = b
	}
	if strings.TrimSpace(in.HostRegistrationURL) == "" {
		return ScriptInput{}, &ValidationError{Code: codeMissingRequired, Field: "hostRegistrationUrl"}
	}
	return in, nil
}

var errNotANumber = errors.New("not an integer")

func toInt(v any) (int, error) {
	switch x := v.(type) {
	case json.Number:
		n, err := strconv.Atoi(x.String())
		if err != nil {
			f, ferr := x.Float64()
			if ferr != nil || f != float64(int(f)) {
				return 0, errNotANumber
			}
			return int(f), nil
		}
		return n, nil
	case string:
		n, err := strconv.Atoi(strings.TrimSpace(x))
		if err != nil {
			return 0, errNotANumber
		}
		return n, nil
	case float64:
		if x != float64(int(x)) {
			return 0, errNotANumber
		}
		return int(x), nil
	case int:
		return x, nil
	}
	return 0, errNotANumber
}

func toBool(v any) (bool, error) {
	switch x := v.(type) {
	case bool:
		return x, nil
	case string:
		return strconv.ParseBool(strings.TrimSpace(x))
	}
	return false, errNotANumber
}
