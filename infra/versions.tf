terraform {
  required_version = ">= 1.6.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.80"
    }
  }

  # State is local by default (and git-ignored). For shared/remote state see backend.hcl.example:
  # project_up.sh writes backend_override.tf (terraform { backend "s3" {} }) when infra/backend.hcl exists.
}
