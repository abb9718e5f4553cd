# No SSE on this topic: the AWS-managed key (alias/aws/sns) cannot be granted to CloudWatch alarms or
# EventBridge (its key policy is fixed), so with it both fail to publish and every alert is silently lost;
# a customer-managed key would cost $1/month. Messages carry only alarm names, task ARNs, exit codes and
# stop reasons (infra/.checkov.yaml skips CKV_AWS_26 for this).
resource "aws_sns_topic" "alerts" {
  name = "${var.project}-alerts"
}

# Who may publish: the three alarms below and, when compaction is on, the compaction dead-letter alarm
# (CloudWatch) and the compaction-failed rule (EventBridge), each by exact source ARN. Principals of this account need no statement here: their
# IAM policies suffice (the terraform role manages the topic and subscriptions that way).
data "aws_iam_policy_document" "alerts_topic" {
  statement {
    sid       = "CloudWatchAlarms"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alerts.arn]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values = concat(
        [
          aws_cloudwatch_metric_alarm.iterator_age.arn,
          aws_cloudwatch_metric_alarm.alb_5xx.arn,
          aws_cloudwatch_metric_alarm.inference_cpu.arn,
        ],
        aws_cloudwatch_metric_alarm.compaction_dlq[*].arn, # none when compaction is off
      )
    }
  }

  dynamic "statement" {
    for_each = aws_cloudwatch_event_rule.compaction_failed[*].arn
    content {
      sid       = "CompactionFailedRule"
      actions   = ["sns:Publish"]
      resources = [aws_sns_topic.alerts.arn]
      principals {
        type        = "Service"
        identifiers = ["events.amazonaws.com"]
      }
      condition {
        test     = "ArnEquals"
        variable = "aws:SourceArn"
        values   = [statement.value]
      }
    }
  }
}

resource "aws_sns_topic_policy" "alerts" {
  arn    = aws_sns_topic.alerts.arn
  policy = data.aws_iam_policy_document.alerts_topic.json
}

resource "aws_sns_topic_subscription" "email" {
  for_each = toset(var.alert_emails)

  topic_arn = aws_sns_topic.alerts.arn
  protocol  = "email"
  endpoint  = each.value
}

resource "aws_cloudwatch_metric_alarm" "iterator_age" {
  alarm_name          = "${var.project}-kinesis-iterator-age"
  alarm_description   = "Consumers are falling behind the ${var.stream_name} stream."
  namespace           = "AWS/Kinesis"
  metric_name         = "GetRecords.IteratorAgeMilliseconds"
  dimensions          = { StreamName = var.stream_name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  threshold           = var.iterator_age_alarm_ms
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alerts.arn]
  ok_actions          = [aws_sns_topic.alerts.arn]
}

resource "aws_cloudwatch_metric_alarm" "alb_5xx" {
  alarm_name          = "${var.project}-alb-5xx"
  alarm_description   = "The ALB or its targets return 5xx."
  comparison_operator = "GreaterThanThreshold"
  evaluation_periods  = 1
  threshold           = var.alb_5xx_threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alerts.arn]

  metric_query {
    id          = "total"
    expression  = "elb + target"
    label       = "5xx (ALB + targets)"
    return_data = true
  }

  metric_query {
    id = "elb"
    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "HTTPCode_ELB_5XX_Count"
      dimensions  = { LoadBalancer = var.alb_arn_suffix }
      period      = 300
      stat        = "Sum"
    }
  }

  metric_query {
    id = "target"
    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "HTTPCode_Target_5XX_Count"
      dimensions  = { LoadBalancer = var.alb_arn_suffix }
      period      = 300
      stat        = "Sum"
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "inference_cpu" {
  alarm_name          = "${var.project}-inference-cpu"
  alarm_description   = "Inference CPU stays high even after scaling out."
  namespace           = "AWS/ECS"
  metric_name         = "CPUUtilization"
  dimensions          = { ClusterName = var.cluster_name, ServiceName = var.inference_service }
  statistic           = "Average"
  period              = 300
  evaluation_periods  = 3
  threshold           = var.cpu_alarm_percent
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alerts.arn]
}

resource "aws_budgets_budget" "monthly" {
  for_each = var.budget_limits_usd

  name         = "${var.project}-${each.key}"
  budget_type  = "COST"
  limit_amount = format("%.2f", each.value)
  limit_unit   = "USD"
  time_unit    = "MONTHLY"

  dynamic "notification" {
    for_each = length(var.alert_emails) > 0 ? ["ACTUAL", "FORECASTED"] : []
    content {
      comparison_operator        = "GREATER_THAN"
      threshold                  = 100
      threshold_type             = "PERCENTAGE"
      notification_type          = notification.value
      subscriber_email_addresses = var.alert_emails
    }
  }
}
