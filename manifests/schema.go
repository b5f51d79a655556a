package manifests

import (
	"encoding/json"
)

// Schema returns a JSON Schema (draft 2020-12) for cluster.yaml, for
// editors (yaml-language-server) and CI linters. schema/cluster.schema.json
// is a committed copy; a test keeps the two and the loader's keys in step.
// The schema cannot express every rule (unique names, secrets that must
// exist), so the loader remains the authority.
func Schema() []byte {
	b, err := json.MarshalIndent(schemaDoc(), "", "  ")
	if err != nil {
		panic("manifests: schema does not encode: " + err.Error()) // static data: cannot happen
	}
	return append(b, '\n')
}

type jsonObj = map[string]any

func schemaStr(desc string) jsonObj { return jsonObj{"type": "string", "description": desc} }

func schemaRef(def, desc string) jsonObj {
	return jsonObj{"$ref": "#/$defs/" + def, "description": desc}
}

func schemaDuration(desc string) jsonObj {
	return jsonObj{"type": "string", "description": desc, "pattern": `^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`}
}

func schemaPort(desc string) jsonObj {
	return jsonObj{"type": "integer", "minimum": 1, "maximum": 65535, "description": desc}
}

func schemaObject(desc string, required []string, props jsonObj) jsonObj {
	o := jsonObj{"type": "object", "additionalProperties": false, "properties": props}
	if desc != "" {
		o["description"] = desc
	}
	if len(required) > 0 {
		o["required"] = required
	}
	return o
}

// schemaEnvironment and schemaLabels describe the host fields that
// hostDefaults shares.
var (
	schemaEnvironment = jsonObj{"type": "string", "minLength": 1,
		"description": "Name of the Rancher environment the host joins (never System HA). Default " + DefaultEnvironment + "."}
	schemaLabels = jsonObj{"type": "object", "description": "Host labels (CATTLE_HOST_LABELS); keys io.haplan.* are haplan's own.",
		"propertyNames":        jsonObj{"pattern": labelKeyPattern},
		"additionalProperties": jsonObj{"type": "string", "pattern": labelValuePattern}}
)

func schemaDoc() jsonObj {
	root := schemaObject("A haplan manifest: a Rancher Server v1.0.1 HA cluster.",
		[]string{"name", "database", "loadBalancer", "nodes"}, jsonObj{
			"name": jsonObj{"type": "string", "description": "Cluster name, a DNS label.",
				"pattern": "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"},
			"rancher": schemaObject("The rancher/server container.", nil, jsonObj{
				"image":               jsonObj{"type": "string", "description": "Image with an explicit tag. Default " + DefaultImage + ".", "pattern": `(:[^/:]+|@.+)$`},
				"agentImage":          jsonObj{"type": "string", "description": "Pre-pulled on every node: the agent each node runs (setting bootstrap.required.image). Default " + DefaultAgentImage + ".", "pattern": `(:[^/:]+|@.+)$`},
				"agentInstanceImage":  jsonObj{"type": "string", "description": "Pre-pulled on every node: the network agent image (setting agent.instance.image). Default " + DefaultAgentInstanceImage + ".", "pattern": `(:[^/:]+|@.+)$`},
				"imageRegistry":       jsonObj{"type": "string", "description": "Pull the server and agent images from this registry (host[:port][/path]) and tag them with their usual names on the nodes, for sites without Docker Hub. Default: none (the nodes' own registry configuration).", "pattern": "^[^/:]+(:[0-9]+)?(/[^:]+)?[^/]$"},
				"hostRegistrationUrl": jsonObj{"type": "string", "description": "http(s) URL without a path. Default https://<loadBalancer.address>.", "pattern": "^https?://[^/]+/?$"},
				"certificate": schemaObject("Your own TLS certificate; omit for a self-signed CA made by the cluster.",
					[]string{"cert", "key", "chain"}, jsonObj{
						"cert":  schemaRef("secret", "Server certificate (PEM)."),
						"key":   schemaRef("secret", "Private key (PEM); a secret."),
						"chain": schemaRef("secret", "CA chain (ca.crt); required with your own certificate."),
					}),
				"apiKey": schemaObject("An account API key of an admin, for servers whose access control is on (every /v1 request then needs it). Omit while access control is off.",
					[]string{"accessKey", "secretKey"}, jsonObj{
						"accessKey": schemaRef("secret", "The key's access key (public value); treated as a secret."),
						"secretKey": schemaRef("secret", "The key's secret key (secret value)."),
					}),
				"bootstrapNode": schemaStr("The node started first. Default: the first node."),
				"timeouts": schemaObject("", nil, jsonObj{
					"bootstrap":        schemaDuration("First start, which creates the schema. Default 20m."),
					"clusterFormation": schemaDuration("Waiting for every node to join. Default 10m."),
					"ssh":              schemaDuration("SSH connect timeout per attempt. Default 15s."),
					"command":          schemaDuration("Bounds every remote command but pulls; a command still running then is killed. Default 2m."),
					"pull":             schemaDuration("Bounds the commands that may pull an image (docker pull, the bootstrap's docker run, rancher-ha.sh). Default 30m."),
					"register":         schemaDuration("Waiting for a registered host to be active in its environment. Default 5m."),
				}),
			}),
			"ssh": schemaRef("ssh", "SSH defaults for every machine."),
			"database": schemaObject("The external MySQL database.", []string{"host", "password", "admin"}, jsonObj{
				"host":     schemaStr("Address of the MySQL server."),
				"port":     schemaPort("Default 3306."),
				"name":     schemaStr("Database name. Default cattle."),
				"user":     schemaStr("Database user. Default cattle."),
				"password": schemaRef("secret", "Password of the database user."),
				"admin": schemaObject("Account that creates the database, the user and the grants.", []string{"user", "password"}, jsonObj{
					"user":     schemaStr("Admin user name."),
					"password": schemaRef("secret", "Admin password."),
					"via": jsonObj{"type": "string", "enum": []string{"direct", "ssh"},
						"description": "direct: from this machine; ssh: through a node's SSH connection (the database sees the node's address). Default ssh when the nodes are behind a bastion, else direct."},
				}),
				"grantHosts": jsonObj{"type": "array", "items": jsonObj{"type": "string", "minLength": 1},
					"description": "MySQL host patterns granted access. Default: each node's address."},
			}),
			"loadBalancer": schemaObject("Where clients and hosts reach the cluster.", []string{"address"}, jsonObj{
				"address": schemaStr("IP address or host name of the load balancer."),
				"haproxy": schemaObject("HAProxy that haplan configures; omit for an external LB that haplan only verifies.", nil, jsonObj{
					"configPath":    schemaStr("Default " + DefaultHAProxyConfigPath + "."),
					"reloadCommand": schemaStr("Default: " + DefaultHAProxyReloadCommand + "."),
					"ssh":           schemaRef("ssh", "Overrides of the ssh defaults for the LB host."),
				}),
			}),
			"nodes": jsonObj{"type": "array", "description": "Rancher servers: 1, 3 or 5 (ZooKeeper quorum).",
				"items": jsonObj{"$ref": "#/$defs/node"},
				"anyOf": []jsonObj{{"minItems": 1, "maxItems": 1}, {"minItems": 3, "maxItems": 3}, {"minItems": 5, "maxItems": 5}}},
			"hostDefaults": schemaObject("Defaults for every host (in hosts and in the hostsFile).", nil, jsonObj{
				"register":    jsonObj{"type": "boolean", "description": "Register the hosts with Rancher (run the registration command); false: only put the cluster CA on them. Default true."},
				"environment": schemaEnvironment,
				"labels":      schemaLabels,
			}),
			"hosts":     jsonObj{"type": "array", "description": "Hosts that join the cluster: the cluster CA, then (unless register is false) registered in their environment.", "items": jsonObj{"$ref": "#/$defs/host"}},
			"hostsFile": schemaStr(`File of further hosts: one "address" or "name address" per line, then options (register=false, environment=NAME, agentIP=IP, label.KEY=VALUE); '#' comments.`),
		})
	machineName := jsonObj{"type": "string", "pattern": "^[a-z0-9][a-z0-9._-]*$"}
	root["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	root["$id"] = "https://github.com/haplan/haplan/schema/cluster.schema.json"
	root["title"] = "haplan cluster manifest"
	root["$defs"] = jsonObj{
		"secret": jsonObj{"type": "object", "additionalProperties": false,
			"description": "A reference to a secret: exactly one of env and file. Never the value.",
			"properties": jsonObj{
				"env":  schemaStr("Environment variable holding the value."),
				"file": schemaStr("File holding the value; relative to the manifest."),
			},
			"oneOf": []jsonObj{{"required": []string{"env"}}, {"required": []string{"file"}}}},
		"ssh": schemaObject("", nil, jsonObj{
			"user":           schemaStr("Login user; a non-root user needs passwordless sudo. Default root."),
			"port":           schemaPort("Default 22."),
			"identityFile":   schemaStr("Private key. Default ~/.ssh/id_ed25519."),
			"knownHostsFile": schemaStr("Default ~/.ssh/known_hosts."),
			"hostKeyPolicy":  jsonObj{"type": "string", "enum": []string{HostKeyStrict, HostKeyAcceptNew}, "description": "Default strict."},
			"hostKey":        schemaStr("Pinned host public key, authorized_keys format."),
			"bastion":        schemaStr(`Jump host, "user@host:port" (user and port optional).`),
		}),
		"node": schemaObject("A Rancher server.", []string{"name", "address"}, jsonObj{
			"name":      machineName,
			"address":   schemaStr("IP address or host name haplan connects to."),
			"clusterIP": schemaStr("Address the other nodes use. Default: address."),
			"ssh":       schemaRef("ssh", "Overrides of the ssh defaults."),
		}),
		"host": schemaObject("A host that joins the cluster.", []string{"address"}, jsonObj{
			"name":        machineName,
			"address":     schemaStr("IP address or host name."),
			"ssh":         schemaRef("ssh", "Overrides of the ssh defaults."),
			"register":    jsonObj{"type": "boolean", "description": "Register with Rancher; false: only the cluster CA. Default: hostDefaults.register (true)."},
			"environment": schemaEnvironment,
			"agentIP":     schemaStr("CATTLE_AGENT_IP: the address the host registers with (behind NAT, with several interfaces). Default: the host's address when it is an IP (the agent would otherwise take the address the server sees, the load balancer's)."),
			"labels":      schemaLabels,
		}),
	}
	return root
}
