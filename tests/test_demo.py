"""`petrostream demo` (what `make demo` runs) on a machine without the 3W sample: its own emulator, synthetic
data, train, promote, serve, replay, and every produced row in the lake once."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_demo_from_nothing_puts_every_row_in_the_lake_once(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_ENDPOINT_URL", "PETROSTREAM_"))}  # nothing from the test session's emulator
    env.update({
        "PETROSTREAM_STATE_DIR": str(tmp_path / "state"),
        "PETROSTREAM_LOCAL_PORT": str(_free_port()),
        "PETROSTREAM_API_PORT": str(_free_port()),
        "PETROSTREAM_MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}",
        "PETROSTREAM_MLFLOW_ARTIFACT_ROOT": str(tmp_path / "mlruns" / "artifacts"),
        "PETROSTREAM_OPTUNA_STORAGE": f"sqlite:///{tmp_path / 'mlruns' / 'optuna.db'}",
    })
    (tmp_path / "mlruns").mkdir()
    demo = [sys.executable, "-m", "petrostream.cli", "demo"]
    try:
        res = subprocess.run([*demo, "--no-keep-running"], cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=900)
    finally:
        down = subprocess.run([*demo, "--down"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, (res.stdout + res.stderr)[-4000:]
    assert down.returncode == 0, down.stderr[-2000:]
    out = res.stdout
    produced = int(re.search(r"rows produced\s+([\d,]+)", out).group(1).replace(",", ""))
    m = re.search(r"rows in the lake\s+([\d,]+) \(unique ([\d,]+)\)", out)
    assert m, out
    assert produced > 50_000
    assert int(m.group(1).replace(",", "")) == int(m.group(2).replace(",", "")) == produced  # every row, once
    assert re.search(r"scored by model\s+version 1", out)
    # the synthetic events are caught: most event instances alarm after their onset
    caught = [(int(a), int(b)) for cls, a, b in re.findall(r"^\s+(\d+) .*alarmed after onset (\d+)/(\d+)", out, re.M)
              if cls != "0"]
    assert caught and sum(a for a, _ in caught) >= 0.75 * sum(b for _, b in caught), out
