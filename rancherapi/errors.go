package rancherapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"unicode/utf8"
)

// APIError is an HTTP error answer from the server. Code, Message and
// FieldName come from cattle's error JSON
// ({"type":"error","status":422,"code":"MissingRequired","fieldName":...});
// when the body is not that JSON, Message holds a short excerpt of it.
type APIError struct {
	Method    string
	URL       string // without credentials
	Status    int
	Code      string
	Message   string
	FieldName string
	// Hint says what to do about it, when the client knows (a 401).
	Hint string
}

// ErrUnauthorized is matched (errors.Is) by a 401 answer: access control is
// on and the request carried no valid API key pair. Not retried.
var ErrUnauthorized = errors.New("unauthorized")

// Is makes errors.Is(err, ErrUnauthorized) true for a 401.
func (e *APIError) Is(target error) bool {
	return target == ErrUnauthorized && e.Status == http.StatusUnauthorized
}

func (e *APIError) Error() string {
	msg := fmt.Sprintf("rancher API %s %s: HTTP %d", e.Method, e.URL, e.Status)
	if e.Code != "" {
		msg += " " + e.Code
	}
	if e.FieldName != "" {
		msg += " (field " + e.FieldName + ")"
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.Hint != "" {
		msg += " (" + e.Hint + ")"
	}
	return msg
}

// ProtocolError is an answer the client cannot use: garbage instead of JSON,
// the wrong content type, or JSON of an unexpected shape.
type ProtocolError struct {
	Method string
	URL    string
	Reason string // what was wrong
	Body   string // excerpt of what came back
	Err    error  // the decoding error, if any
}

func (e *ProtocolError) Error() string {
	msg := fmt.Sprintf("rancher API %s %s: unexpected response: %s", e.Method, e.URL, e.Reason)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	if e.Body != "" {
		msg += fmt.Sprintf(" (body: %q)", e.Body)
	}
	return msg
}

func (e *ProtocolError) Unwrap() error { return e.Err }

// excerptLen bounds how much of a bad body goes into an error.
const excerptLen = 200

var (
	titleRE = regexp.MustCompile(`(?is)<title[^>]*>(.*?)</title>`)
	spaceRE = regexp.MustCompile(`\s+`)
)

// excerpt makes a short, printable summary of a body: an HTML page's title,
// else its start.
func excerpt(b []byte) string {
	s := string(b)
	if strings.Contains(s, "PRIVATE KEY") {
		return "(body holds a private key; withheld)"
	}
	if m := titleRE.FindStringSubmatch(s); m != nil {
		s = m[1]
	}
	s = spaceRE.ReplaceAllString(strings.TrimSpace(s), " ")
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "?")
	}
	if len(s) > excerptLen {
		cut := excerptLen
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	return s
}

// cattleError is the error body cattle writes.
type cattleError struct {
	Type      string          `json:"type"`
	Status    int             `json:"status"`
	Code      string          `json:"code"`
	Message   json.RawMessage `json:"message"`
	Detail    json.RawMessage `json:"detail"`
	FieldName string          `json:"fieldName"`
}

// newAPIError builds an APIError from a non-2xx answer.
func newAPIError(method, url string, status int, body []byte) *APIError {
	e := &APIError{Method: method, URL: url, Status: status}
	var ce cattleError
	if json.Unmarshal(body, &ce) == nil && ce.Type == "error" {
		e.Code = ce.Code
		e.FieldName = ce.FieldName
		e.Message = rawText(ce.Message)
		if e.Message == "" {
			e.Message = rawText(ce.Detail)
		}
		return e
	}
	e.Message = excerpt(body)
	return e
}

// rawText renders a message field that may be a string, null or anything.
func rawText(r json.RawMessage) string {
	if len(r) == 0 || string(r) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(r, &s) == nil {
		return excerpt([]byte(s))
	}
	return excerpt(r)
}
