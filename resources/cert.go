package resources

import (
	"bytes"
	"context"
	"crypto/sha1" // the fingerprint cattle puts in CA_FINGERPRINT is SHA-1
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"

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
	ClusterCA string `json:"cluster_ca,omitempty"` // digest; empty while the cluster's API does not serve it
	// The SHA-1 fingerprints (the first certificate's, as cattle pins
	// it) of the cluster CA and, when it is not that, of the host's file:
	// what an operator compares with CA_FINGERPRINT and the UI.
	ClusterFingerprint string `json:"cluster_fingerprint,omitempty"`
	Fingerprint        string `json:"fingerprint,omitempty"`
	// SameCerts: the file's bytes differ from the cluster CA's, its
	// certificates do not (another line ending, a blank line): it is the
	// cluster CA.
	SameCerts bool `json:"same_certs,omitempty"`
	// Unknown: the cluster CA cannot be known now although the cluster
	// was started (no node's API answers); Why says how. A host's CA is
	// then left as it is. While the cluster has not formed, it is known
	// once it has (the plan defers the comparison).
	Unknown bool   `json:"unknown,omitempty"`
	Why     string `json:"-"`
}

func (s *certDistribute) Probe(ctx context.Context) (engine.State, error) {
	// The host's file and the cluster's CA are read at the same time: on a
	// plan of many hosts the SSH connection to each is most of the cost.
	var ca caReading
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
	if ca.PEM == nil && fi.Exists && !ca.NotYet {
		f, err := s.env.scripts(ctx)
		if err != nil {
			return nil, err
		}
		st.Unknown, st.Why = f.generated(), ca.Why
	}
	if ca.PEM != nil {
		st.ClusterCA = digest(ca.PEM)
		st.ClusterFingerprint = describeCerts(ca.PEM)
	}
	if fi.Exists && ca.PEM != nil && st.Digest != st.ClusterCA {
		// Only a file that differs is read, to say what it holds.
		b, _, err := transport.ReadFile(ctx, r, layout.CA)
		if err != nil {
			return nil, err
		}
		st.Fingerprint = describeCerts(b)
		st.SameCerts = slices.EqualFunc(pemCerts(b), pemCerts(ca.PEM), bytes.Equal)
	}
	return st, nil
}

// describeCerts names a PEM file's certificates by SHA-1 fingerprint.
func describeCerts(b []byte) string {
	certs := pemCerts(b)
	switch len(certs) {
	case 0:
		return "no certificate"
	case 1:
		return "SHA-1 " + sha1Fingerprint(certs[0])
	}
	return fmt.Sprintf("SHA-1 %s and %d more certificates", sha1Fingerprint(certs[0]), len(certs)-1)
}

func (s *certDistribute) Diff(cur engine.State) plans.Change {
	st := cur.(certState)
	want := fmt.Sprintf("%04o", caMode)
	newCA := "the cluster CA (known once the cluster's API serves it)"
	if st.ClusterCA != "" {
		newCA = st.ClusterFingerprint
	}
	switch {
	case !st.Exists:
		return s.change(plans.Create, layout.CA+" is missing", plans.Detail{Name: "ca.crt", New: newCA}, plans.Detail{Name: "mode", New: want})
	case st.Unknown:
		// Decided when apply gets here: the cluster may be started by
		// this very apply (a restore, every node stopped). If its API
		// still serves no CA then, the host's CA is left as it is.
		c := deferred(s.change(plans.Update, layout.CA+" cannot be compared until the cluster's API serves its CA", plans.Detail{Name: "ca.crt", Old: short(st.Digest), New: newCA}))
		c.Warnings = []string{fmt.Sprintf("no node's API serves the cluster CA now (%s): %s is compared once one does, and left as it is until then", st.Why, layout.CA)}
		return c
	case st.ClusterCA == "":
		return deferred(s.change(plans.Update, layout.CA+" cannot be compared until the cluster's API serves its CA", plans.Detail{Name: "ca.crt", Old: short(st.Digest), New: newCA}))
	case st.Digest != st.ClusterCA && !st.SameCerts:
		return s.change(plans.Update, layout.CA+" is not the cluster CA", plans.Detail{Name: "ca.crt", Old: st.Fingerprint, New: newCA})
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
	r, err := s.env.runner(ctx, s.target)
	if err != nil {
		return err
	}
	if ca.PEM == nil {
		// A host's CA is never replaced by a guess; one without a CA
		// cannot be given one.
		fi, err := transport.StatFile(ctx, r, layout.CA)
		if err != nil {
			return err
		}
		if fi.Exists {
			engine.Progress(ctx, "%s left as it is: no node's API serves the cluster CA (%s)", layout.CA, ca.Why)
			return nil
		}
		return fmt.Errorf("%w: %s", errNoClusterCA, ca.Why)
	}
	return transport.WriteFile(ctx, r, layout.CA, ca.PEM, caMode)
}

// sha1Fingerprint is the SHA-1 of a certificate's DER, upper-case hex with
// colons, as cattle writes CA_FINGERPRINT (SslCertificateUtils.digest)
// and as openssl x509 -fingerprint -sha1 prints it.
func sha1Fingerprint(der []byte) string {
	sum := sha1.Sum(der)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	parts := make([]string, 0, len(sum))
	for i := 0; i < len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, ":")
}

// pemCerts are the DER of the CERTIFICATE blocks of a PEM file, in order.
func pemCerts(b []byte) [][]byte {
	var out [][]byte
	for {
		blk, rest := pem.Decode(b)
		if blk == nil {
			return out
		}
		if blk.Type == "CERTIFICATE" {
			out = append(out, blk.Bytes)
		}
		b = rest
	}
}

// errNoClusterCA: the cluster's CA cannot be known yet.
var errNoClusterCA = errors.New("the cluster CA is not known: no node's API serves it at /v1/scripts/ca.crt (the cluster has not formed, or it is down)")
