# yaml-language-server: $schema=../schema/cluster.schema.json
#
# The HCL form of examples/cluster.yaml: the same cluster, with the same
# fields, defaults, validation and file:line:col errors. Mappings are blocks
# (or objects for short ones); nodes and hosts are repeated blocks labelled
# with their name. The schema line above describes the fields of both forms
# (editors apply it to YAML only). Relative paths resolve from this file's
# directory. Try it: haplan validate -f cluster.hcl
name = "prod-rancher"

rancher {
  image               = "rancher/server:v1.0.1"       # default; never leave the tag off
  agentImage          = "rancher/agent:v1.0.1"        # default; pre-pulled with the server image
  agentInstanceImage  = "rancher/agent-instance:v0.8.1"
  hostRegistrationUrl = "https://rancher.example.com" # default: https://<loadBalancer.address>
  certificate {                                       # omit for a self-signed CA made by the cluster
    cert  = { file = "tls/server-cert.pem" }
    key   = { file = "tls/server-key.pem" }             # a secret: only ever read, never printed
    chain = { file = "tls/ca.crt" }                     # required with your own certificate
  }
  apiKey {                                            # once access control is on, an account API key of an admin
    accessKey = { env = "RANCHER_ACCESS_KEY" }          # omit the block while access control is off
    secretKey = { env = "RANCHER_SECRET_KEY" }          # both halves are secrets
  }
  bootstrapNode = "rs1" # default: the first node
  timeouts {
    bootstrap        = "20m" # first start creates the schema; upstream says up to 15 min
    clusterFormation = "10m"
    ssh              = "15s" # connect timeout per attempt
    command          = "2m"  # any remote command (a hung one is killed and named)
    pull             = "30m" # commands that may pull an image
  }
}

ssh { # defaults for every host; each host may override any field
  user           = "root" # a non-root user needs passwordless sudo
  port           = 22
  identityFile   = "~/.ssh/id_ed25519"
  knownHostsFile = "~/.ssh/known_hosts"
  hostKeyPolicy  = "strict" # strict | accept-new
}

database {
  host     = "10.0.0.20"
  port     = 3306
  name     = "cattle"
  user     = "cattle"
  password = { env = "HAPLAN_DB_PASSWORD" } # secrets are references: { env = NAME } or { file = PATH }
  admin {                                    # creates the database, the user and the grants
    user     = "root"
    password = { file = "secrets/db-admin-password" }
  }
  # grantHosts = ["10.0.0.%"]               # default: each node's address
}

loadBalancer {
  address = "10.0.0.10" # where clients and hosts reach the cluster
  haproxy {             # omit for an external LB that haplan only verifies
    configPath    = "/etc/haproxy/haproxy.cfg"
    reloadCommand = "service haproxy reload || service haproxy start"
    ssh           = { user = "root" } # overrides of the ssh defaults for the LB host
  }
}

# 1, 3 or 5 nodes, in order (the first is the default bootstrap node).
node "rs1" {
  address   = "10.0.0.11"
  clusterIP = "10.0.0.11" # default: address
}
node "rs2" {
  address = "10.0.0.12"
}
node "rs3" {
  address = "10.0.0.13"
  ssh { port = 2222 }
}

# Defaults for every host below and in the hostsFile.
hostDefaults {
  environment = "Default" # the Rancher environment they join (default Default)
  register    = true      # default; false: only put the cluster CA on them
  labels      = { managed-by = "ops" } # io.haplan.host=<name> is added by haplan
}

# Hosts that join the cluster: the CA, then registered.
host "h1" {
  address = "10.0.1.1"
  agentIP = "10.0.1.1" # CATTLE_AGENT_IP: behind NAT or with several interfaces
  labels  = { zone = "a" }
}
host { # name defaults to the address
  address = "10.0.1.2"
}
hostsFile = "hosts.txt" # optional: "address" or "name address" per line, then options (register=false environment=NAME agentIP=IP label.KEY=VALUE)
