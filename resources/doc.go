// Package resources compiles a manifests.Cluster into the engine.Steps that
// install and keep a Rancher Server v1.0.1 HA cluster, one file per step
// kind:
//
//	db.database            the Rancher database (utf8, utf8_general_ci)
//	db.grant[NODE]         the application user at each node's address, ALL on the database
//	lb.config              HAProxy on the load balancer: TCP 80/443 to every node, /ping checks on 18080
//	image.pull[NODE]       the server image on each node
//	bootstrap.run          a bootstrap server on one node, waited for until it answers
//	script.generate        rancher-ha.sh, generated once through the bootstrap server, HA enabled,
//	                       the same script kept on every node
//	bootstrap.stop         the bootstrap server removed once the script exists
//	ha.start[NODE]         the node's cluster IP in agent.conf, then the script; a barrier group
//	ha.verify              check: every node active, 443 through the LB with a certificate from the cluster CA
//	cert.distribute[HOST]  the cluster CA at /var/lib/rancher/etc/ssl/ca.crt, mode 0400, on every host
//
// Every Probe reads through transport.ReadOnly runners, so a probe that tried
// to change a host fails loudly instead of changing it. Probes never put a
// secret into State: they record digests and booleans.
//
// An Env holds the connections of one run (SSH pool, the admin database
// connection) and the facts several steps share (the cluster CA). It is safe
// for concurrent use by the engine's goroutines.
package resources
