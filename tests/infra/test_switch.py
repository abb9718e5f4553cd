"""The project switch: project_up.sh / project_down.sh (dry-run, confirmation, failure handling)
and the bucket-emptying step against a local moto S3 server."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
UP = ROOT / "project_up.sh"
DOWN = ROOT / "project_down.sh"


# ------------------------------------------------------------------ fake tools


@pytest.fixture
def fake_bin(tmp_path: Path) -> tuple[Path, Path]:
    """A PATH dir with terraform/docker stand-ins that log their arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    for tool in ["terraform", "docker"]:
        script = bin_dir / tool
        script.write_text(
            "#!/usr/bin/env bash\n"
            f'echo "{tool} $*" >> "{log}"\n'
            f'if [[ -n "${{FAKE_{tool.upper()}_FAIL:-}}" ]]; then echo "{tool}: simulated failure" >&2; exit 3; fi\n'
            'if [[ "$*" == *"output -json bucket_names"* && -n "${FAKE_BUCKETS_JSON:-}" ]]; then\n'
            '  echo "$FAKE_BUCKETS_JSON"\n'
            "fi\n"
        )
        script.chmod(0o755)
    return bin_dir, log


def _run(script: Path, *args: str, env: dict[str, str] | None = None, stdin: str = "", bin_dir: Path | None = None):
    e = dict(os.environ)
    e.pop("PETROSTREAM_ENV", None)
    if bin_dir is not None:
        e["PATH"] = f"{bin_dir}:{e['PATH']}"
    e["PYTHON"] = sys.executable
    e.update(env or {})
    return subprocess.run(
        ["bash", str(script), *args], cwd=ROOT, input=stdin, capture_output=True, text=True, env=e, timeout=120
    )


def _calls(log: Path) -> str:
    return log.read_text() if log.exists() else ""


# ------------------------------------------------------------------ dry runs


def test_up_dry_run_prints_every_step_and_changes_nothing(fake_bin):
    bin_dir, log = fake_bin
    proc = _run(UP, "--dry-run", bin_dir=bin_dir, env={"IMAGE_TAG": "abc123"})
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    steps = [
        "terraform init",
        "terraform apply: registries and buckets first",
        "build and push images",
        "export the champion model",
        "terraform apply: whole stack",
        "deploy ECS services",
        "done",
    ]
    positions = [out.index(f"==> {s}") for s in steps]
    assert positions == sorted(positions)
    assert "dry run" in out
    assert "-var-file=envs/dev.tfvars" in out and "image_tag=abc123" in out
    for component in ["inference", "producer", "dashboard"]:
        assert f"docker build -f {ROOT}/{component}/Dockerfile" in out
    assert "export" in out and "ecs-redeploy" in out
    assert "API:" in out and "Dashboard:" in out
    assert _calls(log) == ""  # no tool was executed


def test_up_deploy_only_skips_bootstrap_and_export(fake_bin):
    bin_dir, log = fake_bin
    proc = _run(UP, "--dry-run", "--deploy-only", bin_dir=bin_dir, env={"IMAGE_TAG": "abc123"})
    assert proc.returncode == 0, proc.stderr
    assert "registries and buckets first" not in proc.stdout and "export the champion model" not in proc.stdout
    assert "==> build and push images" in proc.stdout and "==> terraform apply: whole stack" in proc.stdout
    assert "ecs-redeploy" in proc.stdout
    assert _calls(log) == ""


def test_up_dry_run_other_environment(fake_bin):
    bin_dir, log = fake_bin
    proc = _run(UP, "--dry-run", "--env", "prod", bin_dir=bin_dir)
    assert proc.returncode == 0 and "-var-file=envs/prod.tfvars" in proc.stdout
    bad = _run(UP, "--dry-run", "--env", "nope", bin_dir=bin_dir)
    assert bad.returncode == 2 and "no such environment" in bad.stderr
    assert _calls(log) == ""


def test_down_dry_run_prints_every_step_and_changes_nothing(fake_bin):
    bin_dir, log = fake_bin
    proc = _run(DOWN, "--dry-run", bin_dir=bin_dir)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    order = [out.index(s) for s in ["==> find buckets", "==> empty buckets", "==> terraform destroy", "==> done"]]
    assert order == sorted(order)
    for bucket in ["petrostream-raw", "petrostream-curated", "petrostream-models", "petrostream-athena-results"]:
        assert bucket in out
    assert "destroy -input=false -auto-approve" in out
    assert _calls(log) == ""


@pytest.mark.parametrize("script", [UP, DOWN])
def test_confirmation_required(fake_bin, script):
    bin_dir, log = fake_bin
    proc = _run(script, stdin="n\n", bin_dir=bin_dir)
    assert proc.returncode == 1
    assert "aborted" in proc.stdout
    assert _calls(log) == ""


@pytest.mark.parametrize("script", [UP, DOWN])
def test_unknown_argument_and_help(script):
    proc = _run(script, "--frobnicate")
    assert proc.returncode == 2 and "unknown argument" in proc.stderr
    helped = _run(script, "--help")
    assert helped.returncode == 0 and "--dry-run" in helped.stdout and "--yes" in helped.stdout


def test_scripts_are_strict():
    for script in [UP, DOWN]:
        text = script.read_text()
        assert "set -Eeuo pipefail" in text  # -E so the ERR trap fires inside functions
        assert "trap on_error ERR" in text


def test_up_stops_at_first_error_with_a_clear_message(fake_bin):
    bin_dir, log = fake_bin
    proc = _run(UP, "--yes", bin_dir=bin_dir, env={"FAKE_TERRAFORM_FAIL": "1", "IMAGE_TAG": "t"})
    assert proc.returncode != 0
    assert "FAILED at step 'terraform init'" in proc.stderr
    calls = _calls(log)
    assert calls.count("terraform") == 1 and "docker" not in calls.replace("terraform", "")
    assert "apply" not in calls


# ------------------------------------------------------------------ emulator (moto server)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def moto_endpoint():
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3(moto_endpoint, monkeypatch):
    from petrostream import aws
    from petrostream.settings import get_settings

    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    get_settings.cache_clear()
    aws.reset()
    yield aws.client("s3")
    get_settings.cache_clear()
    aws.reset()


def _versioned_bucket(s3, name: str, keys: int = 3, versions: int = 3, markers: bool = True) -> int:
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    for k in range(keys):
        for v in range(versions):
            s3.put_object(Bucket=name, Key=f"petrostream-anomaly/v{k}/file.bin", Body=f"{k}-{v}".encode())
        if markers:
            s3.delete_object(Bucket=name, Key=f"petrostream-anomaly/v{k}/file.bin")  # delete marker
    return keys * versions + (keys if markers else 0)


def _remaining(s3, name: str) -> int:
    resp = s3.list_object_versions(Bucket=name)
    return len(resp.get("Versions", [])) + len(resp.get("DeleteMarkers", []))


def test_empty_bucket_removes_versions_and_delete_markers(s3):
    from petrostream.buckets import count_versions, empty_bucket

    expected = _versioned_bucket(s3, "switch-versioned")
    assert count_versions("switch-versioned") == expected == 12
    assert empty_bucket("switch-versioned") == expected
    assert _remaining(s3, "switch-versioned") == 0
    s3.delete_bucket(Bucket="switch-versioned")  # S3 agrees: the bucket is empty


def test_empty_bucket_pages_past_1000(s3):
    from petrostream.buckets import empty_bucket

    s3.create_bucket(Bucket="switch-many")
    s3.put_bucket_versioning(Bucket="switch-many", VersioningConfiguration={"Status": "Enabled"})
    for i in range(1100):
        s3.put_object(Bucket="switch-many", Key=f"scored/k{i:05d}", Body=b"x")
    s3.delete_object(Bucket="switch-many", Key="scored/k00001")
    assert empty_bucket("switch-many") == 1101
    assert _remaining(s3, "switch-many") == 0


def test_empty_bucket_unversioned_and_empty(s3):
    from petrostream.buckets import empty_bucket

    s3.create_bucket(Bucket="switch-plain")
    for i in range(5):
        s3.put_object(Bucket="switch-plain", Key=f"raw/{i}", Body=b"x")
    assert empty_bucket("switch-plain") == 5
    assert empty_bucket("switch-plain") == 0


def test_empty_buckets_cli(s3):
    from petrostream.cli_infra import build_app

    _versioned_bucket(s3, "switch-cli", keys=2, versions=2)
    runner = CliRunner()
    app = build_app()
    dry = runner.invoke(app, ["empty-buckets", "--dry-run", "switch-cli", "switch-missing"])
    assert dry.exit_code == 0, dry.output
    assert "would delete 6" in dry.output and "does not exist" in dry.output
    assert _remaining(s3, "switch-cli") == 6
    refused = runner.invoke(app, ["empty-buckets", "switch-cli"], input="n\n")
    assert refused.exit_code != 0 and _remaining(s3, "switch-cli") == 6
    done = runner.invoke(app, ["empty-buckets", "--yes", "switch-cli"])
    assert done.exit_code == 0 and "deleted 6" in done.output
    assert _remaining(s3, "switch-cli") == 0


def test_project_down_empties_buckets_from_state_then_destroys(s3, moto_endpoint, fake_bin):
    bin_dir, log = fake_bin
    names = {"raw": "down-raw", "curated": "down-curated", "models": "down-models", "athena_results": "down-athena"}
    for name in names.values():
        _versioned_bucket(s3, name, keys=2, versions=2)
    env = {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "FAKE_BUCKETS_JSON": json.dumps(names),
    }
    proc = _run(DOWN, "--yes", bin_dir=bin_dir, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in names.values():
        assert _remaining(s3, name) == 0, name
    calls = _calls(log).splitlines()
    assert calls[0].startswith("terraform -chdir=") and "output -json bucket_names" in calls[0]
    assert any(" destroy " in c and "-var-file=envs/dev.tfvars" in c for c in calls)
    assert "switched off" in proc.stdout


def test_project_down_stops_before_destroy_when_emptying_fails(moto_endpoint, fake_bin, tmp_path):
    bin_dir, log = fake_bin
    env = {
        # nothing listens there: the emptying step fails, destroy must not run
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{_free_port()}",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_MAX_ATTEMPTS": "1",
        "FAKE_BUCKETS_JSON": json.dumps({"raw": "x-raw"}),
    }
    proc = _run(DOWN, "--yes", bin_dir=bin_dir, env=env)
    assert proc.returncode != 0
    assert "FAILED at step 'empty buckets" in proc.stderr
    assert "destroy" not in _calls(log)
