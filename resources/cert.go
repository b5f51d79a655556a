package resources

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/haplan/haplan/engine"
	"github.com/haplan/haplan/layout"
	"github.com/haplan/haplan/plans"
	"github.com/haplan/haplan/transport"
)

// caMode is the mode upstream's docs ask for on hosts.
const caMode fs.FileMode = 0o400

// certDistribute installs the cluster CA on a host that will join, so its
// agent trusts the cluster's self-signed certificate.
type certDistribute struct {
	base
	target target
}

var _ engine.Step = (*certDistribute)(nil)

type certState struct {
	Exists    bool   `json:"exists"`
	Digest    string `json:"digest,omitempty"`
	Mode      string `json:"mode,omitempty"`
	ClusterCA string `json:"cluster_ca,omitempty"` // digest; empty while no node has it
}

func (s *certDistribute) Probe(ctx context.Context) (engine.State, error) {
	// The host's file and the cluster's CA are read at the same time: on a
	// plan of many hosts the SSH connection to each is most of the cost.
	var ca []byte
	var caErr error
	read := make(chan struct{})
	go func() {
		defer close(read)
		ca, caErr = s.env.clusterCA(ctx)
	}()
	r, err := s.env.runner(ctx, s.target)
	var fi transport.FileInfo
	if err == nil {
		fi, err = transport.StatFile(ctx, r, layout.CA)
	}
	<-read
	if caErr != nil {
		return nil, caErr
	}
	if err != nil {
		return nil, err
	}
	st := certState{Exists: fi.Exists}
	if fi.Exists {
		st.Digest = "sha256:" + fi.SHA256
		st.Mode = fmt.Sprintf("%04o", fi.Mode.Perm())
	}
	if ca != nil {
		st.ClusterCA = digest(ca)
	}
	return st, nil
}

func (s *certDistribute) Diff(cur engine.State) plans.Change {
	st := cur.(certState)
	want := fmt.Sprintf("%04o", caMode)
	newCA := "the cluster CA (known once the cluster has formed)"
	if st.ClusterCA != "" {
		newCA = short(st.ClusterCA)
	}
	switch {
	case !st.Exists:
		return s.change(plans.Create, layout.CA+" is missing", plans.Detail{Name: "ca.crt", New: newCA}, plans.Detail{Name: "mode", New: want})
	case st.ClusterCA == "":
		return deferred(s.change(plans.Update, layout.CA+" cannot be compared until the cluster has formed", plans.Detail{Name: "ca.crt", Old: short(st.Digest), New: newCA}))
	case st.Digest != st.ClusterCA:
		return s.change(plans.Update, layout.CA+" is not the cluster CA", plans.Detail{Name: "ca.crt", Old: short(st.Digest), New: newCA})
	case st.Mode != want:
		return s.change(plans.Update, fmt.Sprintf("%s has mode %s, want %s", layout.CA, st.Mode, want), plans.Detail{Name: "mode", Old: st.Mode, New: want})
	}
	return s.change(plans.NoOp, layout.CA+" is the cluster CA, mode "+want)
}

func (s *certDistribute) Apply(ctx context.Context, _ plans.Change) error {
	ca, err := s.env.clusterCA(ctx)
	if err != nil {
		return err
	}
	if ca == nil {
		return errors.New("no node has the cluster CA (" + layout.CA + ")")
	}
	r, err := s.env.runner(ctx, s.target)
	if err != nil {
		return err
	}
	return transport.WriteFile(ctx, r, layout.CA, ca, caMode)
}
