# The lake schema has ONE source: infra/lake_schema.json (also read by the Python tests and
# the SQL layer). Edit the JSON, never a copy of it here.
locals {
  lake_schema    = jsondecode(file("${path.module}/../../lake_schema.json"))
  partition_keys = local.lake_schema.partition_keys
  tables         = local.lake_schema.tables
}
