name = "lab"
database {
  host = "10.0.0.20
}
