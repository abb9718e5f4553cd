data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  account   = data.aws_caller_identity.current.account_id
  partition = data.aws_partition.current.partition

  components = toset(["inference", "producer", "dashboard"])

  # Tasks go to private subnets when a NAT-routed set is given; otherwise public subnets with
  # public IPs (security groups still admit only the ALB).
  private_tasks    = length(var.private_subnet_ids) > 0
  task_subnet_ids  = local.private_tasks ? var.private_subnet_ids : var.public_subnet_ids
  assign_public_ip = !local.private_tasks

  https          = var.certificate_arn != null
  api_port       = local.https ? 443 : 80
  dashboard_port = local.https ? 8443 : 8501
  scheme         = local.https ? "https" : "http"
  listener_ports = [tostring(local.api_port), tostring(local.dashboard_port)]

  capacity_provider = var.use_spot ? "FARGATE_SPOT" : "FARGATE"

  # Seconds between SIGTERM and SIGKILL: the whole Fargate Spot 2-minute notice (Fargate maximum).
  stop_timeout = 120

  app_environment = [for k in sort(keys(var.app_environment)) : { name = k, value = var.app_environment[k] }]

  containers = {
    inference = {
      port   = 8080
      cpu    = var.inference_cpu
      memory = var.inference_memory
      health = "http://127.0.0.1:8080/health"
    }
    dashboard = {
      port   = 8501
      cpu    = var.dashboard_cpu
      memory = var.dashboard_memory
      health = "http://127.0.0.1:8501/_stcore/health"
    }
    producer = {
      port   = null
      cpu    = var.producer_cpu
      memory = var.producer_memory
      health = null
    }
  }
}
