locals {
  bucket_prefix = coalesce(var.bucket_prefix, var.project)
  bucket_names = {
    raw            = "${local.bucket_prefix}-raw"
    curated        = "${local.bucket_prefix}-curated"
    models         = "${local.bucket_prefix}-models"
    athena_results = "${local.bucket_prefix}-athena-results"
  }

  stream_name   = "${var.project}-ingest"
  firehose_name = "${var.project}-delivery"
  lease_table   = "${var.project}-leases"
  glue_database = var.project
  workgroup     = var.project
}

# ---------------------------------------------------------------- network
data "aws_vpc" "default" {
  count   = var.vpc_id == null ? 1 : 0
  default = true
}

data "aws_subnets" "default" {
  count = length(var.public_subnet_ids) == 0 ? 1 : 0

  filter {
    name   = "vpc-id"
    values = [local.vpc_id]
  }

  filter {
    name   = "default-for-az"
    values = ["true"]
  }
}

locals {
  vpc_id            = var.vpc_id != null ? var.vpc_id : data.aws_vpc.default[0].id
  public_subnet_ids = length(var.public_subnet_ids) > 0 ? var.public_subnet_ids : data.aws_subnets.default[0].ids
}

# ---------------------------------------------------------------- modules
module "storage" {
  source = "./modules/storage"

  bucket_names                   = local.bucket_names
  athena_results_expiration_days = var.athena_results_expiration_days
}

module "catalog" {
  source = "./modules/catalog"

  database_name          = local.glue_database
  workgroup_name         = local.workgroup
  bucket_names           = local.bucket_names
  bytes_scanned_cutoff   = var.athena_bytes_scanned_cutoff
  athena_results_bucket  = module.storage.bucket_names["athena_results"]
  projection_range_start = "2010-01-01"
}

module "streaming" {
  source = "./modules/streaming"

  project                 = var.project
  region                  = var.region
  stream_name             = local.stream_name
  stream_mode             = var.stream_mode
  shard_count             = var.shard_count
  retention_hours         = var.stream_retention_hours
  firehose_name           = local.firehose_name
  raw_bucket_arn          = module.storage.bucket_arns["raw"]
  raw_prefix              = module.catalog.table_prefixes["raw_readings"]
  glue_database           = module.catalog.database_name
  raw_table               = module.catalog.table_names["raw_readings"]
  lease_table_name        = local.lease_table
  firehose_buffer_mb      = var.firehose_buffer_mb
  firehose_buffer_seconds = var.firehose_buffer_seconds
  log_retention_days      = var.log_retention_days
}

module "compute" {
  source = "./modules/compute"

  project            = var.project
  region             = var.region
  image_tag          = var.image_tag
  vpc_id             = local.vpc_id
  public_subnet_ids  = local.public_subnet_ids
  private_subnet_ids = var.private_subnet_ids
  allowed_cidrs      = var.allowed_cidrs
  certificate_arn    = var.certificate_arn
  dashboard_auth     = var.dashboard_auth
  dashboard_oidc     = var.dashboard_oidc
  dashboard_cognito  = var.dashboard_cognito
  use_spot           = var.use_spot
  log_retention_days = var.log_retention_days

  inference_cpu             = var.inference_cpu
  inference_memory          = var.inference_memory
  inference_min_tasks       = var.inference_min_tasks
  inference_max_tasks       = var.inference_max_tasks
  autoscaling_cpu_target    = var.autoscaling_cpu_target
  autoscaling_memory_target = var.autoscaling_memory_target
  dashboard_cpu             = var.dashboard_cpu
  dashboard_memory          = var.dashboard_memory
  dashboard_desired_count   = var.dashboard_desired_count
  producer_cpu              = var.producer_cpu
  producer_memory           = var.producer_memory
  producer_desired_count    = var.producer_desired_count
  compaction_enabled        = var.compaction_enabled
  compaction_schedule       = var.compaction_schedule

  stream_arn       = module.streaming.stream_arn
  lease_table_arn  = module.streaming.lease_table_arn
  bucket_names     = module.storage.bucket_names
  bucket_arns      = module.storage.bucket_arns
  glue_database    = module.catalog.database_name
  glue_table_names = values(module.catalog.table_names)
  workgroup_name   = module.catalog.workgroup_name

  # PETROSTREAM_* settings passed to every container: the same names petrostream.settings reads.
  app_environment = {
    PETROSTREAM_REGION                = var.region
    PETROSTREAM_PROJECT               = var.project
    PETROSTREAM_STREAM_NAME           = local.stream_name
    PETROSTREAM_STREAM_SHARDS         = tostring(var.shard_count)
    PETROSTREAM_LEASE_TABLE           = local.lease_table
    PETROSTREAM_RAW_BUCKET            = local.bucket_names["raw"]
    PETROSTREAM_CURATED_BUCKET        = local.bucket_names["curated"]
    PETROSTREAM_MODELS_BUCKET         = local.bucket_names["models"]
    PETROSTREAM_ATHENA_RESULTS_BUCKET = local.bucket_names["athena_results"]
    PETROSTREAM_GLUE_DATABASE         = local.glue_database
    PETROSTREAM_ATHENA_WORKGROUP      = local.workgroup
    PETROSTREAM_QUERY_BACKEND         = "athena"
    PETROSTREAM_MODEL_NAME            = var.model_name
  }
}

module "lambda_inference" {
  source = "./modules/lambda_inference"
  count  = var.enable_lambda ? 1 : 0

  project            = var.project
  image_uri          = "${module.compute.ecr_repository_urls["inference"]}:${var.image_tag}"
  stream_arn         = module.streaming.stream_arn
  bucket_arns        = module.storage.bucket_arns
  memory_mb          = var.lambda_memory_mb
  batch_size         = var.lambda_batch_size
  log_retention_days = var.log_retention_days
  environment        = module.compute.app_environment
}

module "observability" {
  source = "./modules/observability"

  project               = var.project
  stream_name           = module.streaming.stream_name
  alb_arn_suffix        = module.compute.alb_arn_suffix
  cluster_name          = module.compute.cluster_name
  inference_service     = module.compute.service_names["inference"]
  alert_emails          = var.alert_emails
  budget_limits_usd     = var.budget_limits_usd
  iterator_age_alarm_ms = var.iterator_age_alarm_ms

  # alert on a failed daily compaction run, or on one that never started (modules/observability/compaction_alert.tf)
  cluster_arn                    = module.compute.cluster_arn
  compaction_enabled             = var.compaction_enabled
  compaction_task_definition_arn = module.compute.compaction_task_definition_arn
  compaction_log_group           = module.compute.compaction_log_group_name
  compaction_dlq_name            = module.compute.compaction_dlq_name
}

module "github_oidc" {
  source = "./modules/github_oidc"
  count  = var.github_repository == "" ? 0 : 1

  project                = var.project
  region                 = var.region
  github_repository      = var.github_repository
  create_oidc_provider   = var.create_github_oidc_provider
  ecr_repository_arns    = values(module.compute.ecr_repository_arns)
  cluster_arn            = module.compute.cluster_arn
  service_arns           = values(module.compute.service_arns)
  pass_role_arns         = module.compute.role_arns
  models_bucket_arn      = module.storage.bucket_arns["models"]
  terraform_state_bucket = var.terraform_state_bucket
  terraform_lock_table   = var.terraform_lock_table
}
