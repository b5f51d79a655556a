package manifests

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

// suggest returns the candidate closest to s by edit distance, or "" when
// none is close enough to be a plausible typo.
func suggest(s string, candidates []string) string {
	best, bestD := "", -1
	for _, c := range candidates {
		d := editDistance(lower(s), lower(c))
		if bestD < 0 || d < bestD {
			best, bestD = c, d
		}
	}
	limit := max(1, min(3, len(s)/3))
	if bestD < 0 || bestD > limit {
		return ""
	}
	return best
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// editDistance is the optimal-string-alignment distance between a and b
// (bytes): Levenshtein plus adjacent transpositions, the commonest typo.
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
