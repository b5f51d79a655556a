name = "lab"
database {
  host     = "10.0.0.20"
  port     = "3306"
  password = "inline-secret-not-shown"
  admin {
    user     = "root"
    password = { file = "secrets/admin-password", env = "HAPLAN_DB_PASSWORD" }
  }
}
loadBalancer {
  address = "10.0.0.10"
}
node "rs1" {
  address = "10.0.0.11"
  ssh { port = 0 }
}
node "rs2" {
  address = "10.0.0.12"
}
