//go:build lab

// Package prooftest proves that the lab is real and the stand-in
// rancher/server:v1.0.1 faithful (issue 2, section 3). Its test does by
// hand, without haplan, what an operator following the upstream Rancher
// 1.0 HA documentation does: OpenSSH with strict host-key checking, plain
// SQL as the database admin, plain HTTP(S) against the bootstrap server and
// the HA nodes.
//
//	go test -tags lab -count=1 -v ./lab/prooftest/
//
// The test uses the server nodes exclusively while it runs: it removes
// rancher-ha, haplan-bootstrap and /var/lib/rancher on every node before it
// starts and again when it ends, as haplan's e2e suite does. Its own
// database (cattle_proof) and user (proof@<node IP>) are dropped at the end.
package prooftest
