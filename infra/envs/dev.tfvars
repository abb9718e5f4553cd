# Development: the default (cost-minimal) shape. Set allowed_cidrs to your own IP (x.x.x.x/32);
# TF_VAR_allowed_cidrs='["x.x.x.x/32"]' overrides it without editing this file.
environment   = "dev"
region        = "us-east-1"
allowed_cidrs = ["203.0.113.10/32"] # documentation range placeholder: replace

stream_mode = "PROVISIONED"
shard_count = 2

use_spot            = true
inference_cpu       = 512
inference_memory    = 1024
inference_min_tasks = 1
inference_max_tasks = 2

dashboard_cpu    = 256
dashboard_memory = 512

producer_cpu           = 256
producer_memory        = 512
producer_desired_count = 1

enable_lambda      = false
log_retention_days = 1
alert_emails       = []
