#!/usr/bin/env bash
# Switch PetroStream ON in AWS: terraform apply, build + push images, roll the ECS services,
# export the champion model, print the URLs.
#
#   ./project_up.sh [--yes] [--dry-run] [--env dev|prod]      (make up)
#   ./project_up.sh --deploy-only                              (make deploy: images + ECS only,
#                                                               no bootstrap apply, no model export)
#
# --dry-run prints every step and changes nothing; --yes skips the confirmation.
# Env: PETROSTREAM_ENV (dev), IMAGE_TAG (git SHA), PYTHON (.venv/bin/python),
# PETROSTREAM_CLI (.venv/bin/petrostream), TF_VAR_* overrides (e.g. TF_VAR_allowed_cidrs).
set -Eeuo pipefail  # -E: the ERR trap also fires inside functions

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
INFRA="${ROOT}/infra"
ENV_NAME="${PETROSTREAM_ENV:-dev}"
YES=0
DRY_RUN=0
DEPLOY_ONLY=0
STEP="start"

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --yes | -y) YES=1 ;;
    --dry-run) DRY_RUN=1 ;;
    --deploy-only) DEPLOY_ONLY=1 ;;
    --env) ENV_NAME="${2:?--env needs a value}"; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "project_up: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

on_error() {
  local rc=$?
  echo "project_up: FAILED at step '${STEP}' (exit ${rc}). Nothing after it ran; fix the cause and re-run (every step is idempotent)." >&2
  exit "${rc}"
}
trap on_error ERR

PYTHON="${PYTHON:-${ROOT}/.venv/bin/python}"
[[ -x "${PYTHON}" ]] || PYTHON="$(command -v python3)"
PETRO_CLI="${PETROSTREAM_CLI:-$(dirname "${PYTHON}")/petrostream}"
[[ -x "${PETRO_CLI}" ]] || PETRO_CLI="petrostream"
TFVARS="${INFRA}/envs/${ENV_NAME}.tfvars"
[[ -f "${TFVARS}" ]] || { echo "project_up: no such environment file: ${TFVARS}" >&2; exit 2; }

if [[ -z "${IMAGE_TAG:-}" ]]; then
  IMAGE_TAG="$(git -C "${ROOT}" rev-parse --short=12 HEAD 2>/dev/null || echo manual)"
  if [[ -n "$(git -C "${ROOT}" status --porcelain 2>/dev/null || true)" ]]; then
    IMAGE_TAG="${IMAGE_TAG}-dirty-$(date +%s)"
  fi
fi

# run CMD...: print it; execute it unless --dry-run.
run() {
  printf '+ %s\n' "$*"
  if [[ "${DRY_RUN}" -eq 0 ]]; then
    "$@"
  fi
}

step() {
  STEP="$1"
  echo
  echo "==> ${STEP}"
}

tf() { run terraform -chdir="${INFRA}" "$@"; }

tf_output() { # name -> raw value (placeholder in dry-run)
  if [[ "${DRY_RUN}" -eq 1 ]]; then
    echo "<${1}>"
  else
    terraform -chdir="${INFRA}" output -raw "$1"
  fi
}

tf_output_key() { # name key -> value of a map output (placeholder in dry-run)
  if [[ "${DRY_RUN}" -eq 1 ]]; then
    echo "<${1}.${2}>"
  else
    terraform -chdir="${INFRA}" output -json "$1" |
      "${PYTHON}" -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$2"
  fi
}

echo "PetroStream UP: environment=${ENV_NAME} image_tag=${IMAGE_TAG}$([[ ${DRY_RUN} -eq 1 ]] && echo ' (dry run: nothing changes)')"
if [[ "${DRY_RUN}" -eq 0 && "${YES}" -eq 0 ]]; then
  read -r -p "Create/update the AWS stack (this costs money, see 'petrostream cost')? [y/N] " answer
  [[ "${answer}" =~ ^[Yy]([Ee][Ss])?$ ]] || { echo "project_up: aborted"; exit 1; }
fi

step "check tools"
for tool in terraform docker; do
  if [[ "${DRY_RUN}" -eq 0 ]] && ! command -v "${tool}" >/dev/null 2>&1; then
    echo "project_up: '${tool}' is not installed" >&2
    false
  fi
  echo "${tool}: $(command -v "${tool}" || echo 'missing (dry run)')"
done

step "terraform init"
if [[ -f "${INFRA}/backend.hcl" ]]; then
  if [[ "${DRY_RUN}" -eq 0 ]]; then
    printf 'terraform {\n  backend "s3" {}\n}\n' >"${INFRA}/backend_override.tf"
  fi
  echo "+ write ${INFRA}/backend_override.tf (remote state from backend.hcl)"
  tf init -input=false -backend-config=backend.hcl
else
  tf init -input=false
fi

if [[ "${DEPLOY_ONLY}" -eq 0 ]]; then
  step "terraform apply: registries and buckets first (images and model need them)"
  tf apply -input=false -auto-approve -var-file="envs/${ENV_NAME}.tfvars" -var "image_tag=${IMAGE_TAG}" \
    -target=module.compute.aws_ecr_repository.this -target=module.storage
fi

step "build and push images"
REGISTRY="$(tf_output_key ecr_repository_urls inference | cut -d/ -f1)"
if [[ "${DRY_RUN}" -eq 1 ]]; then
  echo "+ ${PYTHON} -m petrostream.cli_infra ecr-login-password | docker login --username AWS --password-stdin ${REGISTRY}"
else
  "${PYTHON}" -m petrostream.cli_infra ecr-login-password | docker login --username AWS --password-stdin "${REGISTRY}"
fi
for component in inference producer dashboard; do
  repo="$(tf_output_key ecr_repository_urls "${component}")"
  run docker build -f "${ROOT}/${component}/Dockerfile" -t "${repo}:${IMAGE_TAG}" "${ROOT}"
  run docker push "${repo}:${IMAGE_TAG}"
done

if [[ "${DEPLOY_ONLY}" -eq 0 ]]; then
  step "export the champion model"
  export PETROSTREAM_MODELS_BUCKET
  PETROSTREAM_MODELS_BUCKET="$(tf_output_key bucket_names models)"
  echo "PETROSTREAM_MODELS_BUCKET=${PETROSTREAM_MODELS_BUCKET}"
  run "${PETRO_CLI}" export
fi

step "terraform apply: whole stack (task definitions on the new image tag)"
tf apply -input=false -auto-approve -var-file="envs/${ENV_NAME}.tfvars" -var "image_tag=${IMAGE_TAG}"

step "Athena tables and views (the same SQL files the local DuckDB backend runs)"
run "${PETRO_CLI}" query --deploy

step "deploy ECS services"
CLUSTER="$(tf_output ecs_cluster_name)"
run "${PYTHON}" -m petrostream.cli_infra ecs-redeploy --cluster "${CLUSTER}" \
  "${CLUSTER}-inference" "${CLUSTER}-dashboard" "${CLUSTER}-producer"

step "done"
echo "API:       $(tf_output api_url)   (/health, /ready, /metrics)"
echo "Dashboard: $(tf_output dashboard_url)"
echo "Switch off with: ./project_down.sh (make down). Cost estimate: petrostream cost"
