#!/usr/bin/env bash
# Switch PetroStream OFF in AWS: empty every bucket (ALL object versions and delete markers),
# then terraform destroy. Nothing keeps billing afterwards (remote state, if any, is outside).
#
#   ./project_down.sh [--yes] [--dry-run] [--env dev|prod]    (make down)
#
# --dry-run prints every step and changes nothing (PETROSTREAM_DRY_RUN_COUNT=1: also count the versions);
# --yes skips the confirmation. Env: PETROSTREAM_ENV (dev), PYTHON (.venv/bin/python).
set -Eeuo pipefail  # -E: the ERR trap also fires inside functions

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
INFRA="${ROOT}/infra"
ENV_NAME="${PETROSTREAM_ENV:-dev}"
YES=0
DRY_RUN=0
STEP="start"

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --yes | -y) YES=1 ;;
    --dry-run) DRY_RUN=1 ;;
    --env) ENV_NAME="${2:?--env needs a value}"; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "project_down: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

on_error() {
  local rc=$?
  echo "project_down: FAILED at step '${STEP}' (exit ${rc}). The stack may be partly destroyed; fix the cause and re-run." >&2
  exit "${rc}"
}
trap on_error ERR

PYTHON="${PYTHON:-${ROOT}/.venv/bin/python}"
[[ -x "${PYTHON}" ]] || PYTHON="$(command -v python3)"
TFVARS="${INFRA}/envs/${ENV_NAME}.tfvars"
[[ -f "${TFVARS}" ]] || { echo "project_down: no such environment file: ${TFVARS}" >&2; exit 2; }

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

echo "PetroStream DOWN: environment=${ENV_NAME}$([[ ${DRY_RUN} -eq 1 ]] && echo ' (dry run: nothing changes)')"
if [[ "${DRY_RUN}" -eq 0 && "${YES}" -eq 0 ]]; then
  read -r -p "DELETE all PetroStream data (every bucket version) and destroy the AWS stack? [y/N] " answer
  [[ "${answer}" =~ ^[Yy]([Ee][Ss])?$ ]] || { echo "project_down: aborted"; exit 1; }
fi

step "find buckets"
# Bucket names from the Terraform state when there is one, else the settings defaults.
BUCKETS=()
if [[ "${DRY_RUN}" -eq 0 ]] && command -v terraform >/dev/null 2>&1 &&
  OUT="$(terraform -chdir="${INFRA}" output -json bucket_names 2>/dev/null)" && [[ -n "${OUT}" && "${OUT}" != "null" ]]; then
  mapfile -t BUCKETS < <(echo "${OUT}" | "${PYTHON}" -c 'import json,sys; print("\n".join(json.load(sys.stdin).values()))')
fi
if [[ ${#BUCKETS[@]} -eq 0 ]]; then
  mapfile -t BUCKETS < <("${PYTHON}" -c 'from petrostream.cli_infra import default_buckets; print("\n".join(default_buckets()))')
fi
echo "buckets: ${BUCKETS[*]}"

step "empty buckets (all versions and delete markers)"
if [[ "${DRY_RUN}" -eq 1 ]]; then
  echo "+ ${PYTHON} -m petrostream.cli_infra empty-buckets --yes ${BUCKETS[*]}"
  if [[ "${PETROSTREAM_DRY_RUN_COUNT:-0}" == "1" ]]; then
    "${PYTHON}" -m petrostream.cli_infra empty-buckets --dry-run "${BUCKETS[@]}"
  fi
else
  "${PYTHON}" -m petrostream.cli_infra empty-buckets --yes "${BUCKETS[@]}"
fi

step "terraform destroy"
if [[ -f "${INFRA}/backend.hcl" ]]; then
  if [[ "${DRY_RUN}" -eq 0 ]]; then
    printf 'terraform {\n  backend "s3" {}\n}\n' >"${INFRA}/backend_override.tf"
  fi
  run terraform -chdir="${INFRA}" init -input=false -backend-config=backend.hcl
else
  run terraform -chdir="${INFRA}" init -input=false
fi
run terraform -chdir="${INFRA}" destroy -input=false -auto-approve -var-file="envs/${ENV_NAME}.tfvars"

step "done"
echo "PetroStream is switched off. Remote state (if configured) and AWS Budgets history remain."
