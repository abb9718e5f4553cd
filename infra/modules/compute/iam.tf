# One execution role (pull images, write logs) and one task role per component, each with
# only the actions and resources that component uses (the compaction task's role is in compaction.tf).

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:ecs:${var.region}:${local.account}:*"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }
}

# ---------------------------------------------------------------- execution role
data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "EcrAuth"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"] # GetAuthorizationToken has no resource-level permissions
  }

  statement {
    sid = "EcrPull"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:GetDownloadUrlForLayer",
    ]
    resources = [for r in aws_ecr_repository.this : r.arn]
  }

  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = [for g in concat(values(aws_cloudwatch_log_group.this), aws_cloudwatch_log_group.compaction) : "${g.arn}:*"]
  }
}

resource "aws_iam_role" "execution" {
  name               = "${var.project}-ecs-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

resource "aws_iam_role_policy" "execution" {
  name   = "${var.project}-ecs-execution"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

# ---------------------------------------------------------------- inference task role
data "aws_iam_policy_document" "inference" {
  statement {
    sid = "ConsumeStream"
    actions = [
      "kinesis:DescribeStream",
      "kinesis:DescribeStreamSummary",
      "kinesis:GetRecords",
      "kinesis:GetShardIterator",
      "kinesis:ListShards",
    ]
    resources = [var.stream_arn]
  }

  statement {
    sid = "ShardLeases"
    actions = [
      "dynamodb:DeleteItem",
      "dynamodb:DescribeTable",
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:Query",
      "dynamodb:Scan",
      "dynamodb:UpdateItem",
    ]
    resources = [var.lease_table_arn]
  }

  statement {
    sid       = "ReadModels"
    actions   = ["s3:GetObject", "s3:ListBucket"]
    resources = [var.bucket_arns["models"], "${var.bucket_arns["models"]}/*"]
  }

  statement {
    sid       = "ListCurated"
    actions   = ["s3:GetBucketLocation", "s3:ListBucket"]
    resources = [var.bucket_arns["curated"]]
  }

  statement {
    sid     = "WriteScored"
    actions = ["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"]
    resources = [
      "${var.bucket_arns["curated"]}/scored/*",
      "${var.bucket_arns["curated"]}/events/*",
      "${var.bucket_arns["curated"]}/quarantine/*",
    ]
  }

  statement {
    sid       = "Metrics"
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"] # PutMetricData has no resource-level permissions; the namespace is pinned below
    condition {
      test     = "StringEquals"
      variable = "cloudwatch:namespace"
      values   = ["PetroStream"]
    }
  }
}

# ---------------------------------------------------------------- dashboard task role
data "aws_iam_policy_document" "dashboard" {
  statement {
    sid = "Athena"
    actions = [
      "athena:GetQueryExecution",
      "athena:GetQueryResults",
      "athena:GetWorkGroup",
      "athena:StartQueryExecution",
      "athena:StopQueryExecution",
    ]
    resources = ["arn:${local.partition}:athena:${var.region}:${local.account}:workgroup/${var.workgroup_name}"]
  }

  statement {
    sid = "Catalog"
    actions = [
      "glue:GetDatabase",
      "glue:GetPartition",
      "glue:GetPartitions",
      "glue:GetTable",
      "glue:GetTables",
    ]
    resources = concat(
      [
        "arn:${local.partition}:glue:${var.region}:${local.account}:catalog",
        "arn:${local.partition}:glue:${var.region}:${local.account}:database/${var.glue_database}",
      ],
      [for t in var.glue_table_names : "arn:${local.partition}:glue:${var.region}:${local.account}:table/${var.glue_database}/${t}"],
    )
  }

  statement {
    sid     = "ReadLake"
    actions = ["s3:GetBucketLocation", "s3:GetObject", "s3:ListBucket"]
    resources = [
      var.bucket_arns["raw"], "${var.bucket_arns["raw"]}/*",
      var.bucket_arns["curated"], "${var.bucket_arns["curated"]}/*",
      var.bucket_arns["models"], "${var.bucket_arns["models"]}/*",
    ]
  }

  statement {
    sid = "AthenaResults"
    actions = [
      "s3:AbortMultipartUpload",
      "s3:GetBucketLocation",
      "s3:GetObject",
      "s3:ListBucket",
      "s3:ListMultipartUploadParts",
      "s3:PutObject",
    ]
    resources = [var.bucket_arns["athena_results"], "${var.bucket_arns["athena_results"]}/*"]
  }
}

# ---------------------------------------------------------------- producer task role
data "aws_iam_policy_document" "producer" {
  statement {
    sid = "PutRecords"
    actions = [
      "kinesis:DescribeStream",
      "kinesis:DescribeStreamSummary",
      "kinesis:ListShards",
      "kinesis:PutRecord",
      "kinesis:PutRecords",
    ]
    resources = [var.stream_arn]
  }

  statement {
    sid       = "ReadDataset"
    actions   = ["s3:GetObject", "s3:ListBucket"]
    resources = [var.bucket_arns["raw"], "${var.bucket_arns["raw"]}/datasets/*"]
  }
}

locals {
  task_policies = {
    inference = data.aws_iam_policy_document.inference.json
    dashboard = data.aws_iam_policy_document.dashboard.json
    producer  = data.aws_iam_policy_document.producer.json
  }
}

resource "aws_iam_role" "task" {
  for_each = local.components

  name               = "${var.project}-${each.key}-task"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

resource "aws_iam_role_policy" "task" {
  for_each = local.components

  name   = "${var.project}-${each.key}-task"
  role   = aws_iam_role.task[each.key].id
  policy = local.task_policies[each.key]
}
