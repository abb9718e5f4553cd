resource "aws_cloudwatch_log_group" "this" {
  for_each = local.components

  name              = "/ecs/${var.project}/${each.key}"
  retention_in_days = var.log_retention_days
}

resource "aws_ecs_cluster" "this" {
  name = var.project

  setting {
    name  = "containerInsights"
    value = "disabled" # cost: Container Insights bills custom metrics per task
  }
}

resource "aws_ecs_cluster_capacity_providers" "this" {
  cluster_name       = aws_ecs_cluster.this.name
  capacity_providers = ["FARGATE", "FARGATE_SPOT"]

  default_capacity_provider_strategy {
    capacity_provider = local.capacity_provider
    weight            = 1
    base              = 0
  }
}

locals {
  container_base = {
    for k, c in local.containers : k => {
      name        = k
      image       = "${aws_ecr_repository.this[k].repository_url}:${var.image_tag}"
      essential   = true
      stopTimeout = local.stop_timeout
      environment = local.app_environment
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          "awslogs-group"         = aws_cloudwatch_log_group.this[k].name
          "awslogs-region"        = var.region
          "awslogs-stream-prefix" = k
        }
      }
    }
  }
}

resource "aws_ecs_task_definition" "this" {
  for_each = local.containers

  family                   = "${var.project}-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = tostring(each.value.cpu)
  memory                   = tostring(each.value.memory)
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task[each.key].arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  # Two string branches (not two object shapes) so the conditional type-checks.
  container_definitions = each.value.port == null ? jsonencode([local.container_base[each.key]]) : jsonencode([
    merge(local.container_base[each.key], {
      portMappings = [{ containerPort = each.value.port, protocol = "tcp" }]
      healthCheck = {
        command     = ["CMD", "python", "-c", "import urllib.request; urllib.request.urlopen('${each.value.health}', timeout=3)"]
        interval    = 30
        timeout     = 5
        retries     = 3
        startPeriod = 60
      }
    })
  ])
}

resource "aws_ecs_service" "this" {
  for_each = local.containers

  name                               = "${var.project}-${each.key}"
  cluster                            = aws_ecs_cluster.this.id
  task_definition                    = aws_ecs_task_definition.this[each.key].arn
  desired_count                      = each.key == "inference" ? var.inference_min_tasks : (each.key == "dashboard" ? var.dashboard_desired_count : var.producer_desired_count)
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  health_check_grace_period_seconds  = each.value.port == null ? null : 120
  enable_execute_command             = false
  propagate_tags                     = "SERVICE"

  capacity_provider_strategy {
    capacity_provider = local.capacity_provider
    weight            = 1
  }

  network_configuration {
    subnets          = local.task_subnet_ids
    security_groups  = [aws_security_group.task[each.key].id]
    assign_public_ip = local.assign_public_ip
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  dynamic "load_balancer" {
    for_each = each.value.port == null ? [] : [each.value.port]
    content {
      target_group_arn = aws_lb_target_group.this[each.key].arn
      container_name   = each.key
      container_port   = load_balancer.value
    }
  }

  lifecycle {
    ignore_changes = [desired_count] # owned by Application Auto Scaling
  }

  depends_on = [aws_lb_listener.api, aws_lb_listener.dashboard, aws_ecs_cluster_capacity_providers.this]
}

# ---------------------------------------------------------------- autoscaling (inference)
resource "aws_appautoscaling_target" "inference" {
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.this.name}/${aws_ecs_service.this["inference"].name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.inference_min_tasks
  max_capacity       = var.inference_max_tasks
}

resource "aws_appautoscaling_policy" "inference_cpu" {
  name               = "${var.project}-inference-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.inference.service_namespace
  resource_id        = aws_appautoscaling_target.inference.resource_id
  scalable_dimension = aws_appautoscaling_target.inference.scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.autoscaling_cpu_target
    scale_in_cooldown  = 120
    scale_out_cooldown = 60

    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}

resource "aws_appautoscaling_policy" "inference_memory" {
  name               = "${var.project}-inference-memory"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.inference.service_namespace
  resource_id        = aws_appautoscaling_target.inference.resource_id
  scalable_dimension = aws_appautoscaling_target.inference.scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.autoscaling_memory_target
    scale_in_cooldown  = 120
    scale_out_cooldown = 60

    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageMemoryUtilization"
    }
  }
}
