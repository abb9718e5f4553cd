# Alert on a failed daily compaction (modules/compute/compaction.tf): an EventBridge rule on the default
# bus catches the ECS "Task State Change" event of a compaction task that STOPPED with a non-zero exit
# code, or that never started, and publishes one line to the alerts topic (the topic policy in main.tf
# lets only this rule publish as EventBridge). A run that never got a task (RunTask failing until the
# schedule's retry policy gives up) produces no such event: the scheduler puts it in the compaction
# dead-letter queue (modules/compute/compaction.tf) instead, and the alarm at the end of this file sends it
# to the same topic. Everything here has count = 0 when compaction_enabled is false.
#
# The task is matched on taskDefinitionArn with a prefix ("<ARN without revision>:"), not on `group`:
# `group` is only "family:<family>" by default and is whatever the caller of RunTask sets (the schedule's
# ecs_parameters.group, `aws ecs run-task --group`), while taskDefinitionArn always names what ran, any
# revision; the trailing colon keeps families that merely start with the same name out.

locals {
  compaction_alert_count = var.compaction_enabled ? 1 : 0
}

resource "aws_cloudwatch_event_rule" "compaction_failed" {
  count = local.compaction_alert_count

  name        = "${var.project}-compaction-failed"
  description = "The daily compaction task stopped with a non-zero exit code or failed to start"

  event_pattern = jsonencode({
    source      = ["aws.ecs"]
    detail-type = ["ECS Task State Change"]
    detail = {
      clusterArn        = [var.cluster_arn]
      taskDefinitionArn = [{ prefix = "${var.compaction_task_definition_arn}:" }]
      lastStatus        = ["STOPPED"]
      "$or" = [
        # it ran and failed: either table failed (exit 1), out of memory (137), stopped by hand...
        { containers = { exitCode = [{ anything-but = 0 }] } },
        # it never ran (image pull, ENI, role): no exit code at all, which anything-but does not match
        { stopCode = ["TaskFailedToStart"] },
      ]
    }
  })
}

resource "aws_cloudwatch_event_target" "compaction_failed" {
  count = local.compaction_alert_count

  rule      = aws_cloudwatch_event_rule.compaction_failed[0].name
  target_id = "alerts-topic"
  arn       = aws_sns_topic.alerts.arn

  # One plain-text line (the exit code is empty when the task never started).
  input_transformer {
    input_paths = {
      task     = "$.detail.taskArn"
      exitCode = "$.detail.containers[0].exitCode"
      stopCode = "$.detail.stopCode"
      reason   = "$.detail.stoppedReason"
    }
    input_template = "PetroStream compaction failed: task <task> exit code <exitCode> (<stopCode>: <reason>); logs in ${var.compaction_log_group}"
  }
}

# RunTask never succeeded: the scheduler gave up and dead-lettered the invocation. The queue is empty on a
# good day (no datapoints at all while it is idle: notBreaching); one message is one missed run. The alarm
# stays in ALARM until the message is read and deleted (or the queue purged) after the cause is fixed.
resource "aws_cloudwatch_metric_alarm" "compaction_dlq" {
  count = local.compaction_alert_count

  alarm_name          = "${var.project}-compaction-dlq"
  alarm_description   = "The daily compaction task could not be started (RunTask failed until the schedule gave up); the dead-letter event in ${var.compaction_dlq_name} holds the error."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = var.compaction_dlq_name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  datapoints_to_alarm = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alerts.arn]
}
