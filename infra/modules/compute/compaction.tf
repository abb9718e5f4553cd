# Daily lake compaction (`petrostream compact`, petrostream/compaction.py): an EventBridge Scheduler
# schedule runs one Fargate task from the inference image that rewrites every quiet dt= partition of
# scored_readings, then raw_readings, into ~128 MB objects sorted by well and deletes the small flush
# objects. Everything here has count = 0 when compaction_enabled is false.
#
# One task, one shell line, both tables in sequence: one image pull and one ENI per day, never two
# compactions holding ~128 MB of Parquet in memory at once, raw_readings still runs when scored_readings
# fails, and the task's exit code is non-zero if either failed. The image's ENTRYPOINT is
# `petrostream serve`, so the container overrides entryPoint (a command override alone would append to it).
#
# When RunTask itself keeps failing (IAM, capacity, a bad subnet) no task exists, so the task-state alert in
# modules/observability/compaction_alert.tf never fires: once the retry policy gives up, the scheduler puts
# the failed invocation in the dead-letter queue below, and an alarm there (also in that file) alerts.

locals {
  compaction_count = var.compaction_enabled ? 1 : 0

  # Both tables, in this order; their key prefixes (scored/ in the curated bucket, raw/ in the raw bucket) are
  # the only ones the task role below may touch (infra/lake_schema.json; tests/infra checks they agree).
  compaction_command = "rc=0; for table in scored_readings raw_readings; do petrostream compact --table \"$table\" || rc=1; done; exit $rc"

  compaction_schedule_name = "${var.project}-compaction"

  # 14 days (the SQS maximum): a dead-letter event outlives a long weekend, for reading after the alert.
  compaction_dlq_retention_seconds = 14 * 24 * 3600
}

resource "aws_cloudwatch_log_group" "compaction" {
  count = local.compaction_count

  name              = "/ecs/${var.project}/compaction"
  retention_in_days = var.log_retention_days
}

# ---------------------------------------------------------------- task role: the two table prefixes only
data "aws_iam_policy_document" "compaction" {
  # ListObjectsV2 is authorised on the bucket; the prefix condition keeps listings to the table prefix.
  statement {
    sid       = "ListScored"
    actions   = ["s3:ListBucket"]
    resources = [var.bucket_arns["curated"]]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["scored/*"]
    }
  }

  statement {
    sid       = "ListRaw"
    actions   = ["s3:ListBucket"]
    resources = [var.bucket_arns["raw"]]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["raw/*"]
    }
  }

  # Read a day's flush objects, write the compacted ones, delete the sources: only inside dt= partitions
  # of the two table prefixes (not datasets/, events/, quarantine/ or anything else in the buckets).
  statement {
    sid     = "RewriteDayPartitions"
    actions = ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"]
    resources = [
      "${var.bucket_arns["curated"]}/scored/dt=*",
      "${var.bucket_arns["raw"]}/raw/dt=*",
    ]
  }
}

resource "aws_iam_role" "compaction_task" {
  count = local.compaction_count

  name               = "${var.project}-compaction-task"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

resource "aws_iam_role_policy" "compaction_task" {
  count = local.compaction_count

  name   = "${var.project}-compaction-task"
  role   = aws_iam_role.compaction_task[0].id
  policy = data.aws_iam_policy_document.compaction.json
}

# ---------------------------------------------------------------- task definition
resource "aws_ecs_task_definition" "compaction" {
  count = local.compaction_count

  family                   = "${var.project}-compaction"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = tostring(var.compaction_cpu)
  memory                   = tostring(var.compaction_memory)
  execution_role_arn       = aws_iam_role.execution.arn # pulls the inference image, writes the log group
  task_role_arn            = aws_iam_role.compaction_task[0].arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  container_definitions = jsonencode([{
    name        = "compaction"
    image       = "${aws_ecr_repository.this["inference"].repository_url}:${var.image_tag}"
    essential   = true
    entryPoint  = ["sh", "-c"]
    command     = [local.compaction_command]
    environment = local.app_environment
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        "awslogs-group"         = aws_cloudwatch_log_group.compaction[0].name
        "awslogs-region"        = var.region
        "awslogs-stream-prefix" = "compaction"
      }
    }
  }])
}

# ---------------------------------------------------------------- network: no ingress, HTTPS out
resource "aws_security_group" "compaction" {
  count = local.compaction_count

  name        = "${var.project}-compaction-task"
  description = "PetroStream compaction task: no ingress, HTTPS to AWS APIs"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_egress_rule" "compaction_https" {
  count = local.compaction_count

  security_group_id = aws_security_group.compaction[0].id
  description       = "HTTPS to AWS APIs (S3, ECR, CloudWatch Logs)"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

# ---------------------------------------------------------------- scheduler role: RunTask this definition
data "aws_iam_policy_document" "scheduler_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }
}

data "aws_iam_policy_document" "compaction_scheduler" {
  count = local.compaction_count

  statement {
    sid       = "RunCompactionTask"
    actions   = ["ecs:RunTask"]
    resources = [aws_ecs_task_definition.compaction[0].arn]
    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [aws_ecs_cluster.this.arn]
    }
  }

  # The scheduler delivers dead-letter events as this execution role (not as a service principal), so the
  # role needs sqs:SendMessage (EventBridge Scheduler user guide, "Configuring a schedule's dead-letter queue").
  statement {
    sid       = "SendToCompactionDeadLetterQueue"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.compaction_dlq[0].arn]
  }

  statement {
    sid       = "PassCompactionRoles"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.execution.arn, aws_iam_role.compaction_task[0].arn]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "compaction_scheduler" {
  count = local.compaction_count

  name               = "${var.project}-compaction-scheduler"
  assume_role_policy = data.aws_iam_policy_document.scheduler_assume.json
}

resource "aws_iam_role_policy" "compaction_scheduler" {
  count = local.compaction_count

  name   = "${var.project}-compaction-scheduler"
  role   = aws_iam_role.compaction_scheduler[0].id
  policy = data.aws_iam_policy_document.compaction_scheduler[0].json
}

# ---------------------------------------------------------------- dead-letter queue: RunTask gave up
resource "aws_sqs_queue" "compaction_dlq" {
  count = local.compaction_count

  name                      = "${var.project}-compaction-dlq"
  message_retention_seconds = local.compaction_dlq_retention_seconds
  sqs_managed_sse_enabled   = true
}

# Only the compaction schedule may send: the scheduler sends as the schedule's execution role, which is the
# only principal granted sqs:SendMessage (above); this queue policy also denies every other principal of the
# account, whatever its own IAM policies allow. (A service-principal Allow with aws:SourceArn would never
# match: the scheduler does not call SQS as scheduler.amazonaws.com.)
data "aws_iam_policy_document" "compaction_dlq" {
  count = local.compaction_count

  statement {
    sid       = "OnlyTheCompactionScheduleSends"
    effect    = "Deny"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.compaction_dlq[0].arn]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "ArnNotEquals"
      variable = "aws:PrincipalArn"
      values   = [aws_iam_role.compaction_scheduler[0].arn]
    }
  }
}

resource "aws_sqs_queue_policy" "compaction_dlq" {
  count = local.compaction_count

  queue_url = aws_sqs_queue.compaction_dlq[0].id
  policy    = data.aws_iam_policy_document.compaction_dlq[0].json
}

# ---------------------------------------------------------------- the schedule
resource "aws_scheduler_schedule" "compaction" {
  count = local.compaction_count

  name                         = local.compaction_schedule_name
  description                  = "Daily petrostream compact (scored_readings, raw_readings)"
  schedule_expression          = var.compaction_schedule
  schedule_expression_timezone = "UTC"

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = aws_ecs_cluster.this.arn
    role_arn = aws_iam_role.compaction_scheduler[0].arn

    ecs_parameters {
      task_definition_arn = aws_ecs_task_definition.compaction[0].arn
      task_count          = 1
      # On-demand, not Spot: the saving on a few minutes a day is a fraction of a cent, and a
      # batch that deletes its sources is better not interrupted (a rerun would still recover).
      launch_type      = "FARGATE"
      platform_version = "LATEST"

      network_configuration {
        subnets          = local.task_subnet_ids
        security_groups  = [aws_security_group.compaction[0].id]
        assign_public_ip = local.assign_public_ip
      }
    }

    # RunTask can fail transiently (capacity, throttling): retry for up to an hour.
    retry_policy {
      maximum_event_age_in_seconds = 3600
      maximum_retry_attempts       = 5
    }

    # ...then the failed invocation (with RunTask's error) goes to the dead-letter queue, which alarms.
    dead_letter_config {
      arn = aws_sqs_queue.compaction_dlq[0].arn
    }
  }
}
