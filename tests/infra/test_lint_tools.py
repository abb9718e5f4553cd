"""Linters on the delivery files: hadolint (Dockerfiles), actionlint (workflows), shellcheck (switch
scripts), plus structural checks of the Dockerfiles and workflows."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DOCKERFILES = {c: ROOT / c / "Dockerfile" for c in ["inference", "producer", "dashboard"]}
WORKFLOWS = ROOT / ".github" / "workflows"


def _tool(name: str) -> str:
    path = BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if not found:
        pytest.skip(f"{name} not installed (pip install the dev extras)")
    return found


def test_hadolint_clean():
    proc = subprocess.run(
        [_tool("hadolint"), "--config", str(ROOT / ".hadolint.yaml"), *map(str, DOCKERFILES.values())],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_hadolint_ignores_are_justified():
    text = (ROOT / ".hadolint.yaml").read_text()
    ignored = re.search(r"^ignored:(.*?)(^\S|\Z)", text, re.S | re.M)
    assert ignored
    for line in ignored.group(1).splitlines():
        if re.match(r"\s*-\s*DL\d+", line):
            assert "#" in line, f"unjustified ignore: {line}"


def test_actionlint_clean():
    env = dict(os.environ)
    env["PATH"] = f"{BIN}:{env['PATH']}"  # actionlint runs shellcheck on run: blocks when it is on PATH
    proc = subprocess.run([_tool("actionlint")], cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_shellcheck_switch_scripts():
    proc = subprocess.run(
        [_tool("shellcheck"), "project_up.sh", "project_down.sh"], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("component", list(DOCKERFILES))
def test_dockerfile_shape(component):
    text = DOCKERFILES[component].read_text()
    froms = re.findall(r"^FROM\s+(\S+)", text, re.M)
    assert len(froms) >= 2, "multi-stage"
    for image in froms:
        assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", image), image
    assert re.search(r"^USER\s+(?!root|0\b)\S+", text, re.M), "non-root user"
    entrypoints = re.findall(r"^ENTRYPOINT\s+(.*)$", text, re.M)
    expected = {"inference": "serve", "producer": "produce", "dashboard": "dashboard"}[component]
    assert entrypoints == [f'["petrostream", "{expected}"]']
    assert "COPY --from=build /opt/venv /opt/venv" in text
    install = re.search(r"pip install --no-cache-dir (.*)$", text, re.M).group(1)
    assert ("[dashboard]" in install) == (component == "dashboard")
    if component == "inference":
        assert "EXPOSE 8080" in text and "http://127.0.0.1:8080/health" in text and "urllib" in text
    if component == "dashboard":
        assert "EXPOSE 8501" in text and "http://127.0.0.1:8501/_stcore/health" in text
    assert "HEALTHCHECK" in text


def test_dockerignore_keeps_context_small():
    lines = [
        ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines() if ln.strip() and not ln.startswith("#")
    ]
    assert lines[0] == "*"
    for keep in ["!pyproject.toml", "!README.md", "!petrostream/", "!inference/", "!producer/", "!dashboard/"]:
        assert keep in lines


def _workflow(name: str) -> dict:
    doc = yaml.safe_load((WORKFLOWS / name).read_text())
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads `on:` as True
    return doc


def _runs(doc: dict) -> str:
    return "\n".join(
        str(step.get("run", "")) + str(step.get("uses", "")) for job in doc["jobs"].values() for step in job["steps"]
    )


def test_ci_workflow():
    doc = _workflow("ci.yml")
    runs = _runs(doc)
    for needle in [
        "make lint",
        "make test",
        "make typecheck",
        "hadolint",
        "hashicorp/setup-terraform",
        "terraform fmt -check",
        "terraform validate",
        "actionlint",
    ]:
        assert needle in runs, needle


def test_deploy_workflow():
    doc = _workflow("deploy.yml")
    assert doc["on"]["push"]["branches"] == ["main"]
    assert doc["permissions"]["id-token"] == "write"
    jobs = doc["jobs"]
    assert jobs["apply"]["environment"] == "production"
    assert set(jobs["apply"]["needs"]) == {"plan", "images"}
    runs = _runs(doc)
    assert "terraform plan" in runs and "terraform apply" in runs and "docker push" in runs
    assert "aws-actions/configure-aws-credentials" in runs and "update-service" in runs
    text = (WORKFLOWS / "deploy.yml").read_text()
    assert "aws-access-key-id" not in text and "AWS_SECRET_ACCESS_KEY" not in text


def test_promote_workflow():
    doc = _workflow("promote.yml")
    assert "workflow_dispatch" in doc["on"] and "push" not in doc["on"]
    runs = _runs(doc)
    assert "make promote" in runs and "petrostream export" in runs and "--force-new-deployment" in runs
    assert "petrostream-inference" in runs or '"${PROJECT}-inference"' in runs
