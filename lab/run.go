package lab

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os/exec"
	"strings"
)

// run runs a command and returns its stdout. stdin may be nil.
func run(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var out, errb bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &errb
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	if err := cmd.Run(); err != nil {
		return out.Bytes(), commandError(append([]string{name}, args...), errb.String(), err)
	}
	return out.Bytes(), nil
}

// runPipe runs a command whose stdin is r.
func runPipe(ctx context.Context, r io.Reader, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var out, errb bytes.Buffer
	cmd.Stdin = r
	cmd.Stdout = &out
	cmd.Stderr = &errb
	if err := cmd.Run(); err != nil {
		return out.Bytes(), commandError(append([]string{name}, args...), errb.String(), err)
	}
	return out.Bytes(), nil
}

func commandError(args []string, stderr string, err error) error {
	code := -1
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	}
	return &CommandError{Args: args, ExitCode: code, Stderr: stderr, Err: err}
}

// docker runs the docker CLI.
func docker(ctx context.Context, args ...string) (string, error) {
	out, err := run(ctx, nil, "docker", args...)
	return strings.TrimSpace(string(out)), err
}

// runIn runs a command in directory dir.
func runIn(ctx context.Context, dir, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &errb
	if err := cmd.Run(); err != nil {
		return out.Bytes(), commandError(append([]string{name}, args...), out.String()+errb.String(), err)
	}
	return out.Bytes(), nil
}
