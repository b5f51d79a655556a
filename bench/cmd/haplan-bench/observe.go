package main

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/haplan/haplan/rancherapi"
)

// observer timestamps, from outside haplan and independently of its own
// polling, the moments haplan's two waits could end at the earliest: the
// bootstrap server's first "pong", and the cluster's formation (a node's API
// counts every node active and the load balancer answers /ping). It polls
// every observeEvery, so the waits it measures are exact to that; whatever
// haplan adds after them (its own poll interval included) is overhead.
type observer struct {
	bootstrapURL string   // http://node:8080, on the node's loopback
	nodeURLs     []string // http://node:18080
	lbPing       string   // https://lb/ping
	nodes        int
	// bootstrapDial reaches the bootstrap node's loopback: through an SSH
	// connection of the observer's own, as the server listens there only.
	bootstrapDial func(ctx context.Context, network, addr string) (net.Conn, error)

	mu             sync.Mutex
	bootstrapReady time.Time
	clusterFormed  time.Time
}

const observeEvery = 50 * time.Millisecond

func newObserver(ips map[string]string, nodes []string, lb string) *observer {
	o := &observer{nodes: len(nodes), lbPing: "https://" + ips[lb] + "/ping"}
	for _, n := range nodes {
		o.nodeURLs = append(o.nodeURLs, "http://"+ips[n]+":18080")
	}
	o.bootstrapURL = "http://" + ips[nodes[0]] + ":8080"
	return o
}

// run polls until ctx ends or both moments are seen.
func (o *observer) run(ctx context.Context) {
	httpc := &http.Client{Timeout: time.Second, Transport: &http.Transport{
		// The bench only asks whether the LB answers; haplan's ha.verify
		// checks the certificate against the cluster CA.
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // observer only
		DisableKeepAlives: true,
	}}
	bootc := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return o.bootstrapDial(ctx, "tcp", "127.0.0.1:8080")
		}}}
	boot, _ := rancherapi.New(o.bootstrapURL, rancherapi.Options{HTTP: bootc, Timeout: time.Second})
	var apis []*rancherapi.Client
	for _, u := range o.nodeURLs {
		a, _ := rancherapi.New(u, rancherapi.Options{HTTP: httpc, Timeout: time.Second})
		apis = append(apis, a)
	}
	tick := time.NewTicker(observeEvery)
	defer tick.Stop()
	for {
		now := time.Now()
		o.mu.Lock()
		needBoot, needCluster := o.bootstrapReady.IsZero(), o.clusterFormed.IsZero()
		o.mu.Unlock()
		if !needBoot && !needCluster {
			return
		}
		if needBoot && boot.Ping(ctx) == nil {
			o.mu.Lock()
			o.bootstrapReady = now
			o.mu.Unlock()
		}
		if needCluster && !needBoot && o.formed(ctx, apis, httpc) {
			o.mu.Lock()
			o.clusterFormed = now
			o.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (o *observer) formed(ctx context.Context, apis []*rancherapi.Client, httpc *http.Client) bool {
	ok := false
	for _, a := range apis {
		hosts, err := a.HAHosts(ctx)
		healthy := 0
		for _, h := range hosts {
			if h.Healthy() {
				healthy++
			}
		}
		if err == nil && healthy >= o.nodes {
			ok = true
			break
		}
	}
	if !ok {
		return false
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, o.lbPing, nil)
	if err != nil {
		return false
	}
	resp, err := httpc.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 64)
	n, _ := resp.Body.Read(buf)
	b.Write(buf[:n])
	return resp.StatusCode == http.StatusOK && strings.Contains(b.String(), "pong")
}

func (o *observer) moments() (bootstrapReady, clusterFormed time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.bootstrapReady, o.clusterFormed
}
