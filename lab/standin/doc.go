// Package standin is the lab's stand-in for the rancher/server:v1.0.1
// image, which cannot be fetched on the build machine.
//
// It follows the behaviour described in docs/rancher-1.0-ha.md sections 1-4:
// the bootstrap server (no arguments) creates its schema in the external
// MySQL database, waits CATTLE_STANDIN_INIT_DELAY, then serves the v1 API on
// :8080 (haConfig, createscript, settings, projects). The generated
// rancher-ha.sh mirrors cattle's script.ftl. The "ha" mode mirrors
// cluster-manager: it reads /var/lib/rancher/etc/{agent,server}.conf,
// decrypts the DB password, registers in the cluster table with a heartbeat
// counter, elects the lowest live id as master, waits for clusterSize hosts,
// creates or loads the system-ssl certificate and serves 18080, 80 and 443.
//
// Everything a client can observe (paths, field names, content types, log
// lines, files written on the node) is meant to match the real server; the
// internals are a small simulation. Run is the only entry point main needs.
package standin
