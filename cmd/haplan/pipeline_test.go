package main

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/haplan/haplan/internal/syncbuf"
	"github.com/haplan/haplan/preflight"
)

func TestRunPhasesInOrderAndClosesInReverse(t *testing.T) {
	var got []string
	step := func(name string, err error) phase {
		return func(r *run) error {
			got = append(got, name)
			r.onClose(func() { got = append(got, "close "+name) })
			return err
		}
	}
	for _, tc := range []struct {
		name     string
		second   error
		wantCode int
		want     []string
		wantErr  string
	}{
		{"all succeed", nil, exitOK, []string{"a", "b", "c", "close c", "close b", "close a"}, ""},
		{"done ends early, successfully", errDone, exitOK, []string{"a", "b", "close b", "close a"}, ""},
		{"a failure stops the run and is shown once", errors.New("boom"), exitError, []string{"a", "b", "close b", "close a"}, "Error: boom\n"},
		{"a reported failure is not shown again", reported(exitChanges, errors.New("boom")), exitChanges, []string{"a", "b", "close b", "close a"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got = nil
			var stderr syncbuf.Buffer
			a := &app{stderr: &stderr}
			code := a.newRun(context.Background(), "test", planFlags{}).do(step("a", nil), step("b", tc.second), step("c", nil))
			if code != tc.wantCode {
				t.Errorf("exit code %d, want %d", code, tc.wantCode)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("phases (-want +got):\n%s", diff)
			}
			if s := stderr.String(); s != tc.wantErr {
				t.Errorf("stderr %q, want %q", s, tc.wantErr)
			}
		})
	}
}

func TestRunErrorsAreRedactedOnceLoaded(t *testing.T) {
	var stderr syncbuf.Buffer
	a := &app{stderr: &stderr}
	r := a.newRun(context.Background(), "test", planFlags{})
	code := r.do(func(r *run) error {
		r.o = a.newOutput([]string{testSecret})
		r.onClose(r.o.flush)
		return errors.New("dial with " + testSecret + " failed")
	})
	if code != exitError {
		t.Fatalf("exit code %d", code)
	}
	if s := stderr.String(); strings.Contains(s, testSecret) || !strings.Contains(s, "failed") {
		t.Errorf("stderr %q: the error must be shown, its secret masked", s)
	}
}

func TestBlockedAfterAnApplyDoesNotSayNothingChanged(t *testing.T) {
	rep := &preflight.Report{Findings: []preflight.Finding{{Severity: preflight.Error, Check: "ports", Host: "rs1", Message: "8080 held"}}}
	a := &app{stderr: &syncbuf.Buffer{}}
	o := a.newOutput(nil)
	if err := reportPreflight(rep, o, false); err == nil || !strings.Contains(err.Error(), "nothing was changed") {
		t.Errorf("before any apply: %v", err)
	}
	if err := reportPreflight(rep, o, true); err == nil || strings.Contains(err.Error(), "nothing was changed") || !strings.Contains(err.Error(), "stays applied") {
		t.Errorf("after a restore's stop and load: %v", err)
	}
}
