# Production: HTTPS with dashboard sign-in, private subnets behind a NAT, more headroom.
# Fill the placeholders (certificate, subnets, CIDRs, e-mails, repository) before applying.
environment   = "prod"
region        = "us-east-1"
allowed_cidrs = ["198.51.100.0/24"] # corporate VPN range placeholder: replace

# vpc_id             = "vpc-0123456789abcdef0"
# public_subnet_ids  = ["subnet-aaa", "subnet-bbb"]
# private_subnet_ids = ["subnet-ccc", "subnet-ddd"]   # NAT-routed: tasks get no public IP
# certificate_arn    = "arn:aws:acm:us-east-1:111122223333:certificate/..."
# dashboard_auth     = "cognito"
# dashboard_cognito = {
#   user_pool_arn       = "arn:aws:cognito-idp:us-east-1:111122223333:userpool/us-east-1_XXXX"
#   user_pool_client_id = "xxxxxxxx"
#   user_pool_domain    = "petrostream-auth"
# }

stream_mode = "PROVISIONED"
shard_count = 2

use_spot            = true
inference_cpu       = 1024
inference_memory    = 2048
inference_min_tasks = 2
inference_max_tasks = 6

dashboard_cpu           = 512
dashboard_memory        = 1024
dashboard_desired_count = 1

producer_cpu           = 256
producer_memory        = 512
producer_desired_count = 1

enable_lambda      = false
log_retention_days = 1
alert_emails       = [] # e.g. ["oncall@example.com"]

github_repository           = "" # e.g. "petrostream/petrostream"
create_github_oidc_provider = true
