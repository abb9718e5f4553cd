# ---------------------------------------------------------------- security groups
resource "aws_security_group" "alb" {
  name        = "${var.project}-alb"
  description = "PetroStream ALB: ingress only from allowed_cidrs"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "alb" {
  for_each = { for pair in setproduct(var.allowed_cidrs, local.listener_ports) : "${pair[0]}-${pair[1]}" => pair }

  security_group_id = aws_security_group.alb.id
  description       = "Listener ${each.value[1]} from an allowed CIDR"
  cidr_ipv4         = each.value[0]
  ip_protocol       = "tcp"
  from_port         = tonumber(each.value[1])
  to_port           = tonumber(each.value[1])
}

resource "aws_vpc_security_group_ingress_rule" "alb_redirect" {
  for_each = local.https ? toset(var.allowed_cidrs) : toset([])

  security_group_id = aws_security_group.alb.id
  description       = "HTTP (redirected to HTTPS) from an allowed CIDR"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
}

resource "aws_vpc_security_group_egress_rule" "alb_to_tasks" {
  for_each = { for k, c in local.containers : k => c if c.port != null }

  security_group_id            = aws_security_group.alb.id
  description                  = "To the ${each.key} tasks"
  referenced_security_group_id = aws_security_group.task[each.key].id
  ip_protocol                  = "tcp"
  from_port                    = each.value.port
  to_port                      = each.value.port
}

resource "aws_security_group" "task" {
  for_each = local.components

  name        = "${var.project}-${each.key}-task"
  description = "PetroStream ${each.key} tasks: ingress only from the ALB"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "task_from_alb" {
  for_each = { for k, c in local.containers : k => c if c.port != null }

  security_group_id            = aws_security_group.task[each.key].id
  description                  = "From the ALB"
  referenced_security_group_id = aws_security_group.alb.id
  ip_protocol                  = "tcp"
  from_port                    = each.value.port
  to_port                      = each.value.port
}

resource "aws_vpc_security_group_egress_rule" "task_https" {
  for_each = local.components

  security_group_id = aws_security_group.task[each.key].id
  description       = "HTTPS to AWS APIs (Kinesis, S3, ECR, Athena, CloudWatch)"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

# ---------------------------------------------------------------- load balancer
resource "aws_lb" "this" {
  name                       = var.project
  load_balancer_type         = "application"
  internal                   = false
  subnets                    = var.public_subnet_ids
  security_groups            = [aws_security_group.alb.id]
  drop_invalid_header_fields = true
  enable_deletion_protection = false # the project switch destroys the stack
  idle_timeout               = 60
}

resource "aws_lb_target_group" "this" {
  for_each = { for k, c in local.containers : k => c if c.port != null }

  name                 = "${var.project}-${each.key}"
  port                 = each.value.port
  protocol             = "HTTP"
  target_type          = "ip"
  vpc_id               = var.vpc_id
  deregistration_delay = 30

  health_check {
    enabled             = true
    path                = each.key == "inference" ? "/health" : "/_stcore/health"
    matcher             = "200"
    interval            = 15
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
}

resource "aws_lb_listener" "api" {
  load_balancer_arn = aws_lb.this.arn
  port              = local.api_port
  protocol          = local.https ? "HTTPS" : "HTTP"
  certificate_arn   = var.certificate_arn
  ssl_policy        = local.https ? "ELBSecurityPolicy-TLS13-1-2-2021-06" : null

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this["inference"].arn
  }
}

resource "aws_lb_listener" "dashboard" {
  load_balancer_arn = aws_lb.this.arn
  port              = local.dashboard_port
  protocol          = local.https ? "HTTPS" : "HTTP"
  certificate_arn   = var.certificate_arn
  ssl_policy        = local.https ? "ELBSecurityPolicy-TLS13-1-2-2021-06" : null

  dynamic "default_action" {
    for_each = var.dashboard_auth == "oidc" ? ["oidc"] : [] # not the (sensitive) settings themselves
    content {
      type  = "authenticate-oidc"
      order = 1
      authenticate_oidc {
        issuer                 = var.dashboard_oidc.issuer
        authorization_endpoint = var.dashboard_oidc.authorization_endpoint
        token_endpoint         = var.dashboard_oidc.token_endpoint
        user_info_endpoint     = var.dashboard_oidc.user_info_endpoint
        client_id              = var.dashboard_oidc.client_id
        client_secret          = var.dashboard_oidc.client_secret
      }
    }
  }

  dynamic "default_action" {
    for_each = var.dashboard_auth == "cognito" ? ["cognito"] : []
    content {
      type  = "authenticate-cognito"
      order = 1
      authenticate_cognito {
        user_pool_arn       = var.dashboard_cognito.user_pool_arn
        user_pool_client_id = var.dashboard_cognito.user_pool_client_id
        user_pool_domain    = var.dashboard_cognito.user_pool_domain
      }
    }
  }

  default_action {
    type             = "forward"
    order            = var.dashboard_auth == "none" ? 1 : 2
    target_group_arn = aws_lb_target_group.this["dashboard"].arn
  }

  lifecycle {
    precondition {
      condition     = var.dashboard_auth == "none" || local.https
      error_message = "Dashboard authentication (oidc/cognito) needs an HTTPS listener: set certificate_arn."
    }
    precondition {
      condition     = var.dashboard_auth != "oidc" || var.dashboard_oidc != null
      error_message = "dashboard_auth = oidc needs dashboard_oidc."
    }
    precondition {
      condition     = var.dashboard_auth != "cognito" || var.dashboard_cognito != null
      error_message = "dashboard_auth = cognito needs dashboard_cognito."
    }
  }
}

resource "aws_lb_listener" "http_redirect" {
  count = local.https ? 1 : 0

  load_balancer_arn = aws_lb.this.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type = "redirect"
    redirect {
      port        = "443"
      protocol    = "HTTPS"
      status_code = "HTTP_301"
    }
  }
}
