"""Shared helpers and fixtures for the inference tests (imported by tests/test_inference_*.py).

A real model: an IsolationForest fitted on features of the normal part of two real 3W instances,
wrapped in ``AnomalyModel``, logged with the pyfunc helper (temporary MLflow store), downloaded to a
local dir, and exported to the emulator's models bucket with ``model_store.export`` -- how the
service finds its champion. Streams carry slices of real 3W instances around their event onset.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pandas as pd
import pytest

from petrostream import wire

TRAIN = ("2/WELL-00009_20170313160804", "2/WELL-00010_20171218200131")
STREAM = ("2/WELL-00009_20170313160804", "2/WELL-00010_20171218200131", "2/WELL-00003_20180206182917")
DEADLINE_S = 240  # generous upper bound for "wait until" loops (never a measurement)


def wait_until(pred, timeout: float = DEADLINE_S, every: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


# ---------------------------------------------------------------------------------------------- model


_BUILT: dict[str, dict] = {}  # fixtures imported into several modules are instantiated per module: build once


@pytest.fixture(scope="session")
def model_dirs(threew_dir, tmp_path_factory):
    """{"1": dir, "2": dir}: two versions of a real champion as MLflow model directories."""
    if "dirs" not in _BUILT:
        _BUILT["dirs"] = _build_model_dirs(threew_dir, tmp_path_factory)
    return _BUILT["dirs"]


def _build_model_dirs(threew_dir, tmp_path_factory):
    import mlflow
    import numpy as np
    from sklearn.ensemble import IsolationForest

    from petrostream import pyfunc
    from petrostream.dataset import read_instance
    from petrostream.features import FeatureConfig, feature_matrix
    from petrostream.model import AnomalyModel

    frames = []
    for rel in TRAIN:
        df = read_instance(threew_dir / f"{rel}.parquet")
        normal = df[df["class"].fillna(-1).eq(0)].head(2000).reset_index()
        frames.append(normal.assign(instance_id=rel))
    train = pd.concat(frames, ignore_index=True)
    config = FeatureConfig()
    X = feature_matrix(train, config)
    det = IsolationForest(n_estimators=60, max_samples=256, random_state=7).fit(X)
    scores = -det.score_samples(X)
    base = AnomalyModel(config, det, float(np.quantile(scores, 0.99)), metadata={"trained_on": list(TRAIN)})
    versions = {"1": base, "2": base.with_threshold(float(np.quantile(scores, 0.95)))}

    root = tmp_path_factory.mktemp("models")
    old_uri = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    out = {}
    try:
        exp = mlflow.set_experiment("inference-tests")
        for v, m in versions.items():
            with mlflow.start_run(experiment_id=exp.experiment_id):
                info = pyfunc.log_model(m, name="model", input_example_rows=None)
            out[v] = pyfunc.download(info.model_uri, root / f"v{v}")
    finally:
        mlflow.set_tracking_uri(old_uri)
    return out


@pytest.fixture
def model_name(monkeypatch, tmp_path):
    """A model name of our own (the models bucket is shared by the whole session), a private model cache."""
    from petrostream.settings import get_settings

    name = f"test-model-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("PETROSTREAM_MODEL_NAME", name)
    monkeypatch.setenv("PETROSTREAM_MODEL_CACHE", str(tmp_path / "model-cache"))
    monkeypatch.setenv("PETROSTREAM_MLFLOW_TRACKING_URI", "sqlite:////nonexistent/petrostream-tests.db")
    get_settings.cache_clear()
    return name


def export_version(model_dirs, name: str, version: str) -> dict:
    from petrostream import model_store

    return model_store.export(model_dirs[version], name=name, version=version, run_id=f"run-{version}",
                              metrics={"f1": 0.5 + int(version) / 10})


@pytest.fixture
def champion(emulator, fresh_lake, model_dirs, model_name):
    """Version 1 exported as the champion under a private model name; returns the name."""
    export_version(model_dirs, model_name, "1")
    return model_name


@pytest.fixture
def fresh_lake(emulator, monkeypatch):
    """Private raw + curated buckets for one test (the emulator is shared by the whole session)."""
    from petrostream.aws import client
    from petrostream.settings import get_settings

    tag = uuid.uuid4().hex[:8]
    s3 = client("s3")
    for attr in ("raw_bucket", "curated_bucket"):
        bucket = f"test-{attr.split('_')[0]}-{tag}"
        s3.create_bucket(Bucket=bucket)
        monkeypatch.setenv(f"PETROSTREAM_{attr.upper()}", bucket)
    get_settings.cache_clear()
    return tag


@pytest.fixture(scope="session")
def loaded_model(model_dirs):
    from petrostream import pyfunc

    if "loaded" not in _BUILT:
        _BUILT["loaded"] = pyfunc.load(model_dirs["1"])
    return _BUILT["loaded"]


# ---------------------------------------------------------------------------------------------- data


def slices(threew_dir: Path, rows: int = 800, instances=STREAM) -> list[tuple[object, pd.DataFrame]]:
    """(info, frame) of real instances, ``rows`` rows each, centred on the event onset."""
    from petrostream.dataset import parse_instance_path, read_instance

    out = []
    for rel in instances:
        info = parse_instance_path(threew_dir / f"{rel}.parquet")
        df = read_instance(info)
        onset = int(df["class"].fillna(0).ne(0).to_numpy().argmax())
        start = max(0, min(onset - rows // 2, len(df) - rows))
        out.append((info, df.iloc[start : start + rows]))
    return out


def encode_records(parts, rows_per_record: int = 40) -> list[tuple[str, bytes]]:
    """(partition key, data) per record, instances interleaved round-robin (as a live replay)."""
    chunks = []
    for info, df in parts:
        mine = []
        for i in range(0, len(df), rows_per_record):
            data = wire.encode(instance_id=info.instance_id, well_id=info.well_id, source=info.source,
                               event_class=info.event_class, frame=df.iloc[i : i + rows_per_record])
            mine.append((info.instance_id, data))
        chunks.append(mine)
    out = []
    for i in range(max(len(c) for c in chunks)):
        out += [c[i] for c in chunks if i < len(c)]
    return out


def put(stream: str, records: list[tuple[str, bytes]]) -> list[dict]:
    """put_records in batches of 500; returns the per-record results (ShardId, SequenceNumber)."""
    from petrostream.aws import client

    k = client("kinesis")
    results = []
    for i in range(0, len(records), 500):
        batch = records[i : i + 500]
        resp = k.put_records(StreamName=stream, Records=[{"PartitionKey": pk, "Data": d} for pk, d in batch])
        assert resp.get("FailedRecordCount", 0) == 0
        results += resp["Records"]
    return results


def expected_keys(parts) -> pd.DataFrame:
    rows = []
    for info, df in parts:
        rows.append(pd.DataFrame({"instance_id": info.instance_id, "ts": df.index.to_numpy()}))
    return pd.concat(rows, ignore_index=True)


def scored_table() -> pd.DataFrame:
    from petrostream.lake import SCORED, read_table

    return read_table(SCORED)


def rows_for(df: pd.DataFrame, parts) -> pd.DataFrame:
    ids = {info.instance_id for info, _ in parts}
    return df[df["instance_id"].isin(ids)]


def assert_exactly_once(df: pd.DataFrame, parts) -> None:
    got = rows_for(df, parts)
    want = expected_keys(parts)
    keys = got[["instance_id", "ts"]].assign(ts=pd.to_datetime(got["ts"]).astype("datetime64[ms]"))
    dup = keys.duplicated().sum()
    assert dup == 0, f"{dup} rows duplicated in the lake"
    merged = want.assign(ts=want["ts"].astype("datetime64[ms]")).merge(keys, how="left", indicator=True)
    missing = int((merged["_merge"] == "left_only").sum())
    assert missing == 0, f"{missing} of {len(want)} rows missing from the lake"
    assert len(got) == len(want)
    assert got["model_version"].notna().all()


def assert_scores_match_batch(df: pd.DataFrame, parts, model, rtol: float = 0.0) -> None:
    """Scores in the lake equal ``model.predict`` over each whole instance (stream state was right)."""
    import numpy as np

    whole = pd.concat([d.drop(columns=["class"]).reset_index().assign(instance_id=i.instance_id) for i, d in parts],
                      ignore_index=True)
    expected = whole.assign(**model.predict(whole)).rename(columns={"timestamp": "ts"})
    expected["ts"] = expected["ts"].astype("datetime64[ms]")
    got = rows_for(df, parts).assign(ts=lambda d: pd.to_datetime(d["ts"]).astype("datetime64[ms]"))
    merged = got.merge(expected[["instance_id", "ts", "anomaly_score"]], on=["instance_id", "ts"],
                       suffixes=("", "_batch"))
    assert len(merged) == len(whole)
    np.testing.assert_allclose(merged["anomaly_score"], merged["anomaly_score_batch"], rtol=rtol, atol=1e-12)


# ---------------------------------------------------------------------------------------------- subprocesses


def serve_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "petrostream.cli", "serve", *args]


def start(args: list[str], log: Path, env: dict | None = None) -> subprocess.Popen:
    fh = open(log, "ab")  # noqa: SIM115 - owned by the child
    return subprocess.Popen(args, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
                            env={**os.environ, "PETROSTREAM_LOG_FORMAT": "text", **(env or {})})


def stop(proc: subprocess.Popen, sig=signal.SIGTERM, timeout: float = 120) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(10)
