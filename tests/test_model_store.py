"""Model store against the local S3 emulator: round trip, cache, corrupted and partial exports refused."""

from __future__ import annotations

import json
import uuid

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import IsolationForest

from petrostream import aws
from petrostream.features import FeatureConfig, feature_matrix
from petrostream.model import AnomalyModel
from petrostream.model_store import (
    ModelStoreError,
    export,
    load_champion,
    manifest_key,
    pull,
    read_manifest,
    version_prefix,
)
from petrostream.settings import Settings


def _rows(n=1500, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "instance_id": "w1",
        "timestamp": pd.date_range("2020-01-01", periods=n, freq="1s"),
        "P-TPT": 1e7 + rng.normal(0, 5e3, n),
        "T-TPT": 90 + rng.normal(0, 0.05, n),
    })


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A small pyfunc model directory (as `mlflow.artifacts.download_artifacts` would give)."""
    from petrostream import pyfunc

    cfg = FeatureConfig(windows=(10, 60), variables=("P-TPT", "T-TPT"))
    X = feature_matrix(_rows(), cfg)
    model = AnomalyModel.from_parts(detector=IsolationForest(n_estimators=10, random_state=0).fit(X), threshold=0.6,
                                    feature_config=cfg, metadata={"family": "iforest"})
    return pyfunc.save_model(model, tmp_path_factory.mktemp("export") / "model"), model


@pytest.fixture
def store(emulator):
    """Settings with a model name of its own (tests share the session's emulator)."""
    return Settings(model_name=f"test-model-{uuid.uuid4().hex[:8]}")


def test_export_pull_load_roundtrip(store, model_dir, tmp_path):
    local, model = model_dir
    assert read_manifest(settings=store) is None
    metrics = {"obs_f1": 0.5, "x": float("nan")}
    manifest = export(local, name=store.model_name, version=3, run_id="run-1", metrics=metrics, settings=store)
    assert manifest["version"] == "3" and manifest["alias"] == "champion" and manifest["metrics"]["x"] is None
    assert "MLmodel" in manifest["files"] and all(len(f["sha256"]) == 64 for f in manifest["files"].values())
    keys = {o["Key"] for o in aws.client("s3").list_objects_v2(Bucket=store.models_bucket,
                                                                Prefix=store.model_name)["Contents"]}
    assert keys == {version_prefix(store.model_name, 3) + r for r in manifest["files"]} | {
        manifest_key(store.model_name)}
    assert read_manifest(settings=store) == json.loads(json.dumps(manifest))

    got, man = load_champion(settings=store, cache_dir=tmp_path / "cache")
    assert man["run_id"] == "run-1"
    rows = _rows(seed=1)
    np.testing.assert_array_equal(got.predict(rows).to_numpy(), model.predict(rows).to_numpy())

    # cached: a second pull of the same version reuses the verified copy (even with S3 gone)
    s3 = aws.client("s3")
    for k in keys:
        s3.delete_object(Bucket=store.models_bucket, Key=k)
    again = pull(man, tmp_path / "cache", settings=store)
    assert (again / "MLmodel").is_file()


def test_corrupted_file_is_refused(store, model_dir, tmp_path):
    local, _ = model_dir
    manifest = export(local, name=store.model_name, version=1, run_id="r", metrics={}, settings=store)
    victim = next(r for r in manifest["files"] if r.endswith(".joblib"))
    body = (local / victim).read_bytes()
    aws.client("s3").put_object(Bucket=store.models_bucket, Key=version_prefix(store.model_name, 1) + victim,
                                Body=body[:-1] + bytes([body[-1] ^ 0xFF]))  # same size, one byte flipped
    with pytest.raises(ModelStoreError, match=f"{victim}: sha256 .*corrupted export"):
        pull(read_manifest(settings=store), tmp_path / "cache", settings=store)
    assert not (tmp_path / "cache" / store.model_name / "v1").exists()  # nothing half-written is left for reuse


def test_missing_file_is_refused(store, model_dir, tmp_path):
    local, _ = model_dir
    manifest = export(local, name=store.model_name, version=2, run_id="r", metrics={}, settings=store)
    aws.client("s3").delete_object(Bucket=store.models_bucket, Key=version_prefix(store.model_name, 2) + "MLmodel")
    with pytest.raises(ModelStoreError, match="MLmodel: missing"):
        pull(manifest, tmp_path / "cache", settings=store)
    with pytest.raises(ModelStoreError, match="MLmodel: missing"):
        load_champion(settings=store, cache_dir=tmp_path / "cache")


def test_truncated_file_and_no_export(store, model_dir, tmp_path):
    local, _ = model_dir
    manifest = export(local, name=store.model_name, version=4, run_id="r", metrics={}, settings=store)
    aws.client("s3").put_object(Bucket=store.models_bucket, Key=version_prefix(store.model_name, 4) + "MLmodel",
                                Body=b"truncated")
    with pytest.raises(ModelStoreError, match="MLmodel: size"):
        pull(manifest, tmp_path / "cache", settings=store)
    with pytest.raises(ModelStoreError, match="no exported model"):
        load_champion(settings=Settings(model_name="never-exported"), cache_dir=tmp_path)
    with pytest.raises(ModelStoreError, match="not found"):
        export(tmp_path / "nope", name="x", version=1, run_id=None, metrics={}, settings=store)
