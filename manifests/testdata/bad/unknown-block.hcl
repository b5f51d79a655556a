name = "lab"
database {
  host     = "10.0.0.20"
  password = { env = "HAPLAN_DB_PASSWORD" }
  admin {
    user     = "root"
    password = { file = "secrets/admin-password" }
  }
}
loadBalancer {
  address = "10.0.0.10"
}
node "rs1" {
  address = "10.0.0.11"
}
node "rs2" {
  adress = "10.0.0.12"
}
nodes "rs3" {
  address = "10.0.0.13"
}
