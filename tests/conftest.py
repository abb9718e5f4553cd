"""Shared fixtures: a fresh local AWS emulator per test session, the real 3W sample, temp MLflow."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PETROSTREAM_LOG_FORMAT", "text")
# Never reach real AWS from tests, even before the emulator fixture runs.
os.environ["AWS_ACCESS_KEY_ID"] = "test"
os.environ["AWS_SECRET_ACCESS_KEY"] = "test"
os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
os.environ.pop("AWS_PROFILE", None)

REPO_ROOT = Path(__file__).resolve().parents[1]


def sample_dir() -> Path | None:
    """The real 3W sample: $PETROSTREAM_SAMPLE_DIR or ../shared/data/3w next to the repository."""
    env = os.environ.get("PETROSTREAM_SAMPLE_DIR")
    candidates = [Path(env)] if env else []
    candidates += [REPO_ROOT.parent / "shared" / "data" / "3w", REPO_ROOT.parent.parent / "shared" / "data" / "3w"]
    for c in candidates:
        if (c / "files.csv").exists() or any(c.glob("*/*.parquet")):
            return c
    return None


@pytest.fixture(scope="session")
def threew_dir() -> Path:
    d = sample_dir()
    if d is None:
        pytest.skip("real 3W sample not found (set PETROSTREAM_SAMPLE_DIR or place it at ../shared/data/3w)")
    return d


@pytest.fixture(scope="session")
def emulator(tmp_path_factory):
    """A fresh moto server on a free loopback port for the whole session, bootstrapped.

    Sets AWS_ENDPOINT_URL (and dummy credentials) in this process, so subprocesses inherit it.
    """
    from petrostream import aws, local
    from petrostream.settings import get_settings

    state = tmp_path_factory.mktemp("emulator")
    port = local.free_port()
    emu = local.start(port=port, state_dir=state)
    aws.use_local_endpoint(emu.endpoint)
    get_settings.cache_clear()
    local.bootstrap()
    yield emu
    local.stop(state_dir=state)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    aws.reset()


@pytest.fixture
def fresh_stream(emulator, monkeypatch):
    """A new Kinesis stream for one test (moto slows down as a stream fills). Returns its name."""
    from petrostream import local
    from petrostream.settings import get_settings

    def make(shards: int = 2) -> str:
        name = f"test-{uuid.uuid4().hex[:10]}"
        local.ensure_stream(name, shards)
        monkeypatch.setenv("PETROSTREAM_STREAM_NAME", name)
        get_settings.cache_clear()
        return name

    yield make
    get_settings.cache_clear()


@pytest.fixture
def mlflow_tmp(tmp_path, monkeypatch):
    """A private MLflow tracking store (sqlite) and artifact root for one test."""
    from petrostream.settings import get_settings

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("PETROSTREAM_MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("PETROSTREAM_MLFLOW_ARTIFACT_ROOT", str(tmp_path / "artifacts"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    get_settings.cache_clear()
    yield uri
    get_settings.cache_clear()


@pytest.fixture(autouse=True)
def _fresh_settings():
    from petrostream.settings import get_settings

    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
