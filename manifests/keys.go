package manifests

import "github.com/haplan/haplan/internal/didyoumean"

// objectKeys lists the keys each kind of object accepts, in the order the
// schema documents them. The decoder refuses any other key, and a test
// checks this table against Schema() in both directions.
func objectKeys(kind string) []string {
	switch kind {
	case "cluster":
		return []string{"name", "rancher", "ssh", "database", "loadBalancer", "nodes", "hostDefaults", "hosts", "hostsFile"}
	case "rancher":
		return []string{"image", "agentImage", "agentInstanceImage", "imageRegistry", "hostRegistrationUrl", "certificate", "apiKey", "bootstrapNode", "timeouts"}
	case "apiKey":
		return []string{"accessKey", "secretKey"}
	case "certificate":
		return []string{"cert", "key", "chain"}
	case "timeouts":
		return []string{"bootstrap", "clusterFormation", "ssh", "command", "pull", "register"}
	case "ssh":
		return []string{"user", "port", "identityFile", "knownHostsFile", "hostKeyPolicy", "hostKey", "bastion"}
	case "database":
		return []string{"host", "port", "name", "user", "password", "admin", "grantHosts"}
	case "admin":
		return []string{"user", "password", "via"}
	case "loadBalancer":
		return []string{"address", "haproxy"}
	case "haproxy":
		return []string{"configPath", "reloadCommand", "ssh"}
	case "node":
		return []string{"name", "address", "clusterIP", "ssh"}
	case "host":
		return []string{"name", "address", "ssh", "register", "environment", "agentIP", "labels"}
	case "hostDefaults":
		return []string{"register", "environment", "labels"}
	case "secret":
		return []string{"env", "file"}
	}
	return nil
}

// objectKinds are the kinds objectKeys knows.
func objectKinds() []string {
	return []string{"cluster", "rancher", "certificate", "apiKey", "timeouts", "ssh", "database", "admin",
		"loadBalancer", "haproxy", "node", "hostDefaults", "host", "secret"}
}

// suggest is didyoumean.Closest: the candidate close enough to s to be a
// plausible typo, or "".
func suggest(s string, candidates []string) string { return didyoumean.Closest(s, candidates) }
