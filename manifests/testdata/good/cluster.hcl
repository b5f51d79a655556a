# The HCL form of examples/cluster.yaml.
name = "prod-rancher"

rancher {
  image               = "rancher/server:v1.0.1"
  hostRegistrationUrl = "https://rancher.example.com"
  certificate {
    cert  = { file = "tls/server-cert.pem" }
    key   = { file = "tls/server-key.pem" }
    chain = { file = "tls/ca.crt" }
  }
  apiKey {
    accessKey = { env = "RANCHER_ACCESS_KEY" }
    secretKey = { env = "RANCHER_SECRET_KEY" }
  }
  bootstrapNode = "rs1"
  timeouts {
    bootstrap        = "20m"
    clusterFormation = "10m"
    ssh              = "15s"
  }
}

ssh {
  user           = "root"
  port           = 22
  identityFile   = "~/.ssh/id_ed25519"
  knownHostsFile = "~/.ssh/known_hosts"
  hostKeyPolicy  = "strict"
}

database {
  host     = "10.0.0.20"
  port     = 3306
  name     = "cattle"
  user     = "cattle"
  password = { env = "HAPLAN_DB_PASSWORD" }
  admin {
    user     = "root"
    password = { file = "secrets/db-admin-password" }
  }
}

loadBalancer {
  address = "10.0.0.10"
  haproxy {
    configPath    = "/etc/haproxy/haproxy.cfg"
    reloadCommand = "service haproxy reload || service haproxy start"
    ssh = { user = "root" }
  }
}

node "rs1" {
  address   = "10.0.0.11"
  clusterIP = "10.0.0.11"
}
node "rs2" {
  address = "10.0.0.12"
}
node "rs3" {
  address = "10.0.0.13"
  ssh { port = 2222 }
}

hostDefaults {
  environment = "Default"
  register    = true
  labels      = { managed-by = "ops" }
}

host "h1" {
  address = "10.0.1.1"
  agentIP = "10.0.1.1"
  labels  = { zone = "a" }
}
host {
  address = "10.0.1.2"
}
hostsFile = "hosts.txt"
