// Package standin is the lab's stand-in for the rancher/server:v1.0.1 and
// rancher/agent:v1.0.1 images, which cannot be fetched on the build
// machine. One static binary plays both.
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
// Hosts join the cluster as in section 8, from cattle v0.159.7 and
// rancher/rancher v1.0.1's agent/ (the sources each part follows are named
// where it is written):
//   - registration tokens (tokens.go): credentials of kind
//     registrationToken (code/implementation/register: RegisterTokenCreate,
//     RegistrationToken.createToken, RegistrationAuthTokenManagerImpl,
//     RegistrationTokenOutputFilter; docker.register.command in
//     system-services/defaults.properties), the admin account's own token
//     (RegisterTokenAccountCreate), /v1/scripts/<token>
//     (RegisterScriptHandler, registration.sh) and api.host
//     (ServerContext; cluster-manager's DEFAULT_CATTLE_API_HOST);
//   - scope (scope.go): the request's project (ApiAuthenticator), links on
//     a /v1/projects/<id>/ URL built on it;
//   - the register object, the agent and its hosts (reghosts.go):
//     RegisterCreate, RegisterOutputFilter, AgentResourcesMonitorImpl,
//     PingMonitorImpl, AgentHostStateUpdate, HostRemove; states and actions
//     from the generic processes (lifecycle.go, process/defaults.properties);
//     lists from gdapi's ParseCollectionAttributes (list.go);
//   - projects created through POST /v1/projects (ProjectResourceManager);
//   - the agent image (agentimage.go): run.sh, register.py, resolve_url.py
//     and the python agent's ping answer.
//
// The agent connects differently: instead of cattle's event websocket it
// publishes an unsolicited ping answer (POST /v1/publish, with its keys)
// every few seconds, and the server counts the missed ones.
//
// Everything a client can observe (paths, field names, content types, log
// lines, files written on the node) is meant to match the real server; the
// internals are a small simulation. Run is the only entry point main needs.
package standin
