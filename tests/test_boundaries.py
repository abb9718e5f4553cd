"""Architecture rules that keep serving light and the parts separable.

- the core (petrostream/) imports no deployable;
- inference/ and dashboard/ never import training/ (serving does not carry the tuning stack);
- producer/ and inference/ never import each other (they meet only on the stream);
- pure logic (features, metrics, model) imports no boto3, mlflow or streamlit;
- the deployed entry points work from a clean virtualenv with only what their image installs.
"""

from __future__ import annotations

import ast
import os
import subprocess
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _imports(package: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in (ROOT / package).rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        names: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


@pytest.mark.parametrize(
    "package, forbidden",
    [
        ("petrostream", {"training", "inference", "producer", "dashboard"}),
        ("inference", {"training", "producer", "dashboard"}),
        ("dashboard", {"training", "inference", "producer"}),
        ("producer", {"training", "inference", "dashboard"}),
    ],
)
def test_import_direction(package, forbidden):
    offenders = {f: sorted(n & forbidden) for f, n in _imports(package).items() if n & forbidden}
    assert not offenders, f"{package} must not import {sorted(forbidden)}: {offenders}"


@pytest.mark.parametrize("module", ["features", "metrics", "model", "schema", "wire"])
def test_pure_logic_has_no_io_stack(module):
    names = _imports("petrostream")[f"petrostream/{module}.py"]
    assert not names & {"boto3", "botocore", "mlflow", "streamlit"}, names


@pytest.mark.slow
def test_entrypoints_from_a_clean_virtualenv(tmp_path):
    """What the inference/producer images install (`pip install .`, no extras) runs their entry points."""
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    install = subprocess.run([str(py), "-m", "pip", "install", "-q", str(ROOT)], capture_output=True, text=True,
                             env=env, timeout=900)
    assert install.returncode == 0, install.stderr[-2000:]
    cli = env_dir / "bin" / "petrostream"
    for command in ("serve", "produce", "archive", "local"):
        run = subprocess.run([str(cli), command, "--help"], capture_output=True, text=True, env=env, timeout=120,
                             cwd=tmp_path)
        assert run.returncode == 0, f"petrostream {command} --help: {run.stderr[-1000:]}"
        assert "Usage" in run.stdout
    # The serving path imports without the training stack (optuna is only in the `train` extra).
    probe = subprocess.run(
        [str(py), "-c", "import inference.service, inference.api, producer.replay, petrostream.model_store; "
         "import importlib.util, sys; sys.exit(importlib.util.find_spec('optuna') is not None)"],
        capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert probe.returncode == 0, probe.stderr[-1000:] or "optuna is installed in the serving image"
