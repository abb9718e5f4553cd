# GitHub Actions reach AWS through OIDC (no static keys):
#  - the deploy role (push images, roll ECS services, export models) for runs on main;
#  - the terraform role (plan/apply) for runs on main and the `production` environment.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  account     = data.aws_caller_identity.current.account_id
  partition   = data.aws_partition.current.partition
  oidc_host   = "token.actions.githubusercontent.com"
  name_prefix = var.project
  # Resources of this project are all named <project>-... (or <project>): the terraform role is scoped to them.
  arn_any_region = "arn:${local.partition}:%s:${var.region}:${local.account}:%s"
}

resource "aws_iam_openid_connect_provider" "github" {
  count = var.create_oidc_provider ? 1 : 0

  url            = "https://${local.oidc_host}"
  client_id_list = ["sts.amazonaws.com"]
  # AWS validates GitHub's certificate chain itself; the thumbprint is kept for older providers.
  thumbprint_list = ["6938fd4d98bab03faadb97b34396831e3780aea1"]
}

locals {
  oidc_provider_arn = var.create_oidc_provider ? aws_iam_openid_connect_provider.github[0].arn : "arn:${local.partition}:iam::${local.account}:oidc-provider/${local.oidc_host}"
}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [local.oidc_provider_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.oidc_host}:aud"
      values   = ["sts.amazonaws.com"]
    }
    condition {
      test     = "StringLike"
      variable = "${local.oidc_host}:sub"
      values = [
        "repo:${var.github_repository}:ref:refs/heads/main",
        "repo:${var.github_repository}:environment:production",
      ]
    }
  }
}

# ---------------------------------------------------------------- deploy role
data "aws_iam_policy_document" "deploy" {
  statement {
    sid       = "EcrAuth"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"] # no resource-level permissions for this action
  }

  statement {
    sid = "EcrPush"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:CompleteLayerUpload",
      "ecr:DescribeImages",
      "ecr:GetDownloadUrlForLayer",
      "ecr:InitiateLayerUpload",
      "ecr:PutImage",
      "ecr:UploadLayerPart",
    ]
    resources = var.ecr_repository_arns
  }

  statement {
    sid       = "EcsRollout"
    actions   = ["ecs:DescribeServices", "ecs:UpdateService"]
    resources = var.service_arns
  }

  statement {
    sid       = "EcsDescribe"
    actions   = ["ecs:DescribeClusters", "ecs:ListServices"]
    resources = [var.cluster_arn]
  }

  statement {
    sid       = "PassTaskRoles"
    actions   = ["iam:PassRole"]
    resources = var.pass_role_arns
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }

  statement {
    sid       = "ModelExport"
    actions   = ["s3:GetObject", "s3:ListBucket", "s3:PutObject"]
    resources = [var.models_bucket_arn, "${var.models_bucket_arn}/*"]
  }
}

resource "aws_iam_role" "deploy" {
  name                 = "${var.project}-github-deploy"
  assume_role_policy   = data.aws_iam_policy_document.assume.json
  max_session_duration = 3600
}

resource "aws_iam_role_policy" "deploy" {
  name   = "${var.project}-github-deploy"
  role   = aws_iam_role.deploy.id
  policy = data.aws_iam_policy_document.deploy.json
}

# ---------------------------------------------------------------- terraform role
# Terraform needs create/read/update/delete on every resource type of this stack. Actions are
# listed per service (no "service:*"); resources are scoped to the project's name prefix where the
# service supports resource-level permissions.
data "aws_iam_policy_document" "terraform" {
  statement {
    sid = "Read"
    actions = [
      "application-autoscaling:DescribeScalableTargets",
      "application-autoscaling:DescribeScalingPolicies",
      "ec2:DescribeAccountAttributes",
      "ec2:DescribeNetworkInterfaces",
      "ec2:DescribeSecurityGroupRules",
      "ec2:DescribeSecurityGroups",
      "ec2:DescribeSubnets",
      "ec2:DescribeVpcs",
      "ecr:GetAuthorizationToken",
      "elasticloadbalancing:DescribeListenerAttributes",
      "elasticloadbalancing:DescribeListeners",
      "elasticloadbalancing:DescribeLoadBalancerAttributes",
      "elasticloadbalancing:DescribeLoadBalancers",
      "elasticloadbalancing:DescribeRules",
      "elasticloadbalancing:DescribeTags",
      "elasticloadbalancing:DescribeTargetGroupAttributes",
      "elasticloadbalancing:DescribeTargetGroups",
      "firehose:ListDeliveryStreams",
      "kinesis:ListStreams",
      "sts:GetCallerIdentity",
    ]
    resources = ["*"] # describe/list calls without resource-level permissions
  }

  statement {
    sid = "TaskDefinitions"
    actions = [
      "ecs:DeregisterTaskDefinition",
      "ecs:DescribeTaskDefinition",
      "ecs:RegisterTaskDefinition",
      "ecs:TagResource",
    ]
    resources = [format(local.arn_any_region, "ecs", "task-definition/${local.name_prefix}-*")]
  }

  statement {
    sid = "OidcProvider"
    actions = [
      "iam:CreateOpenIDConnectProvider",
      "iam:DeleteOpenIDConnectProvider",
      "iam:GetOpenIDConnectProvider",
      "iam:TagOpenIDConnectProvider",
      "iam:UpdateOpenIDConnectProviderThumbprint",
    ]
    resources = ["arn:${local.partition}:iam::${local.account}:oidc-provider/${local.oidc_host}"]
  }

  statement {
    sid = "Storage"
    actions = [
      "s3:CreateBucket",
      "s3:DeleteBucket",
      "s3:DeleteBucketPolicy",
      "s3:GetAccelerateConfiguration",
      "s3:GetBucketAcl",
      "s3:GetBucketCORS",
      "s3:GetBucketLogging",
      "s3:GetBucketObjectLockConfiguration",
      "s3:GetBucketOwnershipControls",
      "s3:GetBucketPolicy",
      "s3:GetBucketPublicAccessBlock",
      "s3:GetBucketRequestPayment",
      "s3:GetBucketTagging",
      "s3:GetBucketVersioning",
      "s3:GetBucketWebsite",
      "s3:GetEncryptionConfiguration",
      "s3:GetLifecycleConfiguration",
      "s3:GetReplicationConfiguration",
      "s3:ListBucket",
      "s3:PutBucketOwnershipControls",
      "s3:PutBucketPolicy",
      "s3:PutBucketPublicAccessBlock",
      "s3:PutBucketTagging",
      "s3:PutBucketVersioning",
      "s3:PutEncryptionConfiguration",
      "s3:PutLifecycleConfiguration",
    ]
    resources = ["arn:${local.partition}:s3:::${local.name_prefix}-*"]
  }

  statement {
    sid = "Streaming"
    actions = [
      "dynamodb:CreateTable",
      "dynamodb:DeleteTable",
      "dynamodb:DescribeContinuousBackups",
      "dynamodb:DescribeTable",
      "dynamodb:DescribeTimeToLive",
      "dynamodb:ListTagsOfResource",
      "dynamodb:TagResource",
      "dynamodb:UpdateContinuousBackups",
      "firehose:CreateDeliveryStream",
      "firehose:DeleteDeliveryStream",
      "firehose:DescribeDeliveryStream",
      "firehose:ListTagsForDeliveryStream",
      "firehose:TagDeliveryStream",
      "firehose:UpdateDestination",
      "kinesis:AddTagsToStream",
      "kinesis:CreateStream",
      "kinesis:DecreaseStreamRetentionPeriod",
      "kinesis:DeleteStream",
      "kinesis:DescribeStreamSummary",
      "kinesis:IncreaseStreamRetentionPeriod",
      "kinesis:ListTagsForStream",
      "kinesis:StartStreamEncryption",
      "kinesis:UpdateShardCount",
      "kinesis:UpdateStreamMode",
    ]
    resources = [
      format(local.arn_any_region, "dynamodb", "table/${local.name_prefix}-*"),
      format(local.arn_any_region, "firehose", "deliverystream/${local.name_prefix}-*"),
      format(local.arn_any_region, "kinesis", "stream/${local.name_prefix}-*"),
    ]
  }

  statement {
    sid = "Catalog"
    actions = [
      "athena:CreateWorkGroup",
      "athena:DeleteWorkGroup",
      "athena:GetWorkGroup",
      "athena:ListTagsForResource",
      "athena:TagResource",
      "athena:UpdateWorkGroup",
      "glue:CreateDatabase",
      "glue:CreateTable",
      "glue:DeleteDatabase",
      "glue:DeleteTable",
      "glue:GetDatabase",
      "glue:GetTable",
      "glue:GetTags",
      "glue:TagResource",
      "glue:UpdateDatabase",
      "glue:UpdateTable",
    ]
    resources = [
      format(local.arn_any_region, "athena", "workgroup/${local.name_prefix}"),
      format(local.arn_any_region, "glue", "catalog"),
      format(local.arn_any_region, "glue", "database/${local.name_prefix}"),
      format(local.arn_any_region, "glue", "table/${local.name_prefix}/*"),
      format(local.arn_any_region, "glue", "userDefinedFunction/${local.name_prefix}/*"),
    ]
  }

  statement {
    sid = "Compute"
    actions = [
      "application-autoscaling:DeleteScalingPolicy",
      "application-autoscaling:DeregisterScalableTarget",
      "application-autoscaling:ListTagsForResource",
      "application-autoscaling:PutScalingPolicy",
      "application-autoscaling:RegisterScalableTarget",
      "ecr:CreateRepository",
      "ecr:DeleteLifecyclePolicy",
      "ecr:DeleteRepository",
      "ecr:DescribeRepositories",
      "ecr:GetLifecyclePolicy",
      "ecr:ListTagsForResource",
      "ecr:PutImageScanningConfiguration",
      "ecr:PutImageTagMutability",
      "ecr:PutLifecyclePolicy",
      "ecr:TagResource",
      "ecs:CreateCluster",
      "ecs:CreateService",
      "ecs:DeleteCluster",
      "ecs:DeleteService",
      "ecs:DescribeClusters",
      "ecs:DescribeServices",
      "ecs:PutClusterCapacityProviders",
      "ecs:TagResource",
      "ecs:UpdateCluster",
      "ecs:UpdateService",
      "elasticloadbalancing:AddTags",
      "elasticloadbalancing:CreateListener",
      "elasticloadbalancing:CreateLoadBalancer",
      "elasticloadbalancing:CreateTargetGroup",
      "elasticloadbalancing:DeleteListener",
      "elasticloadbalancing:DeleteLoadBalancer",
      "elasticloadbalancing:DeleteTargetGroup",
      "elasticloadbalancing:ModifyListener",
      "elasticloadbalancing:ModifyLoadBalancerAttributes",
      "elasticloadbalancing:ModifyTargetGroup",
      "elasticloadbalancing:ModifyTargetGroupAttributes",
      "elasticloadbalancing:SetSecurityGroups",
      "lambda:CreateEventSourceMapping",
      "lambda:GetEventSourceMapping",
      "lambda:CreateFunction",
      "lambda:DeleteEventSourceMapping",
      "lambda:DeleteFunction",
      "lambda:DeleteFunctionConcurrency",
      "lambda:GetFunction",
      "lambda:GetFunctionCodeSigningConfig",
      "lambda:ListVersionsByFunction",
      "lambda:PutFunctionConcurrency",
      "lambda:UpdateEventSourceMapping",
      "lambda:UpdateFunctionCode",
      "lambda:UpdateFunctionConfiguration",
      "sqs:CreateQueue",
      "sqs:DeleteQueue",
      "sqs:GetQueueAttributes",
      "sqs:ListQueueTags",
      "sqs:SetQueueAttributes",
      "sqs:TagQueue",
    ]
    resources = [
      format(local.arn_any_region, "application-autoscaling", "scalable-target/*"),
      format(local.arn_any_region, "ecr", "repository/${local.name_prefix}-*"),
      format(local.arn_any_region, "ecs", "cluster/${local.name_prefix}"),
      format(local.arn_any_region, "ecs", "service/${local.name_prefix}/*"),
      format(local.arn_any_region, "elasticloadbalancing", "loadbalancer/app/${local.name_prefix}/*"),
      format(local.arn_any_region, "elasticloadbalancing", "listener/app/${local.name_prefix}/*"),
      format(local.arn_any_region, "elasticloadbalancing", "targetgroup/${local.name_prefix}-*"),
      format(local.arn_any_region, "lambda", "function:${local.name_prefix}-*"),
      format(local.arn_any_region, "lambda", "event-source-mapping:*"),
      format(local.arn_any_region, "sqs", "${local.name_prefix}-*"),
    ]
  }

  statement {
    sid = "Schedules"
    actions = [
      "scheduler:CreateSchedule",
      "scheduler:DeleteSchedule",
      "scheduler:GetSchedule",
      "scheduler:UpdateSchedule",
    ]
    resources = [format(local.arn_any_region, "scheduler", "schedule/default/${local.name_prefix}-*")]
  }

  statement {
    sid = "EventRules"
    actions = [
      "events:DeleteRule",
      "events:DescribeRule",
      "events:ListTagsForResource",
      "events:ListTargetsByRule",
      "events:PutRule",
      "events:PutTargets",
      "events:RemoveTargets",
      "events:TagResource",
    ]
    resources = [format(local.arn_any_region, "events", "rule/${local.name_prefix}-*")]
  }

  statement {
    sid = "Network"
    actions = [
      "ec2:AuthorizeSecurityGroupEgress",
      "ec2:AuthorizeSecurityGroupIngress",
      "ec2:CreateSecurityGroup",
      "ec2:CreateTags",
      "ec2:DeleteSecurityGroup",
      "ec2:DescribeVpcAttribute",
      "ec2:RevokeSecurityGroupEgress",
      "ec2:RevokeSecurityGroupIngress",
    ]
    resources = [
      format(local.arn_any_region, "ec2", "security-group/*"),
      format(local.arn_any_region, "ec2", "security-group-rule/*"),
      format(local.arn_any_region, "ec2", "vpc/*"),
    ]
  }

  statement {
    sid = "Observability"
    actions = [
      "budgets:ModifyBudget",
      "budgets:ViewBudget",
      "cloudwatch:DescribeAlarms",
      "cloudwatch:DeleteAlarms",
      "cloudwatch:ListTagsForResource",
      "cloudwatch:PutMetricAlarm",
      "cloudwatch:TagResource",
      "logs:CreateLogGroup",
      "logs:CreateLogStream",
      "logs:DeleteLogGroup",
      "logs:DeleteLogStream",
      "logs:DescribeLogGroups",
      "logs:DescribeLogStreams",
      "logs:ListTagsForResource",
      "logs:PutRetentionPolicy",
      "logs:TagResource",
      "sns:CreateTopic",
      "sns:DeleteTopic",
      "sns:GetSubscriptionAttributes",
      "sns:GetTopicAttributes",
      "sns:ListTagsForResource",
      "sns:SetTopicAttributes",
      "sns:Subscribe",
      "sns:TagResource",
      "sns:Unsubscribe",
    ]
    resources = [
      "arn:${local.partition}:budgets::${local.account}:budget/${local.name_prefix}-*",
      format(local.arn_any_region, "cloudwatch", "alarm:${local.name_prefix}-*"),
      format(local.arn_any_region, "logs", "log-group:/ecs/${local.name_prefix}/*"),
      format(local.arn_any_region, "logs", "log-group:/aws/lambda/${local.name_prefix}-*"),
      format(local.arn_any_region, "logs", "log-group:/aws/kinesisfirehose/${local.name_prefix}-*"),
      format(local.arn_any_region, "sns", "${local.name_prefix}-*"),
    ]
  }

  statement {
    sid = "Identity"
    actions = [
      "iam:AttachRolePolicy",
      "iam:CreateRole",
      "iam:DeleteRole",
      "iam:DeleteRolePolicy",
      "iam:DetachRolePolicy",
      "iam:GetRole",
      "iam:GetRolePolicy",
      "iam:ListAttachedRolePolicies",
      "iam:ListInstanceProfilesForRole",
      "iam:ListRolePolicies",
      "iam:PassRole",
      "iam:PutRolePolicy",
      "iam:TagRole",
      "iam:UpdateAssumeRolePolicy",
    ]
    resources = ["arn:${local.partition}:iam::${local.account}:role/${local.name_prefix}-*"]
  }

  statement {
    sid = "IdentityPolicies"
    actions = [
      "iam:CreatePolicy",
      "iam:CreatePolicyVersion",
      "iam:DeletePolicy",
      "iam:DeletePolicyVersion",
      "iam:GetPolicy",
      "iam:GetPolicyVersion",
      "iam:ListPolicyVersions",
      "iam:TagPolicy",
    ]
    resources = ["arn:${local.partition}:iam::${local.account}:policy/${local.name_prefix}-*"]
  }

  dynamic "statement" {
    for_each = var.terraform_state_bucket == "" ? [] : [var.terraform_state_bucket]
    content {
      sid       = "StateBucket"
      actions   = ["s3:DeleteObject", "s3:GetObject", "s3:ListBucket", "s3:PutObject"]
      resources = ["arn:${local.partition}:s3:::${statement.value}", "arn:${local.partition}:s3:::${statement.value}/*"]
    }
  }

  dynamic "statement" {
    for_each = var.terraform_lock_table == "" ? [] : [var.terraform_lock_table]
    content {
      sid       = "StateLock"
      actions   = ["dynamodb:DeleteItem", "dynamodb:DescribeTable", "dynamodb:GetItem", "dynamodb:PutItem"]
      resources = [format(local.arn_any_region, "dynamodb", "table/${statement.value}")]
    }
  }
}

resource "aws_iam_role" "terraform" {
  name                 = "${var.project}-github-terraform"
  assume_role_policy   = data.aws_iam_policy_document.assume.json
  max_session_duration = 3600
}

resource "aws_iam_policy" "terraform" {
  name   = "${var.project}-github-terraform"
  policy = data.aws_iam_policy_document.terraform.json
}

resource "aws_iam_role_policy_attachment" "terraform" {
  role       = aws_iam_role.terraform.name
  policy_arn = aws_iam_policy.terraform.arn
}
