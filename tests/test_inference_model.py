# ruff: noqa: F811 - pytest fixtures are imported from test_inference_support
"""Champion resolution: MLflow registry alias when there is no export, the S3 manifest when there is."""

from __future__ import annotations

import uuid

from test_inference_support import export_version, loaded_model, model_dirs  # noqa: F401 - fixtures

from inference.metrics import Metrics
from inference.model_loader import ModelHolder


def test_registry_alias_then_manifest(emulator, mlflow_tmp, model_dirs, loaded_model, monkeypatch, tmp_path):
    import mlflow

    from petrostream import pyfunc
    from petrostream.settings import get_settings

    name = f"registry-model-{uuid.uuid4().hex[:6]}"
    monkeypatch.setenv("PETROSTREAM_MODEL_NAME", name)
    monkeypatch.setenv("PETROSTREAM_MODEL_CACHE", str(tmp_path / "cache"))
    get_settings.cache_clear()

    holder = ModelHolder(metrics=Metrics(), poll_s=0)
    assert holder.refresh() is False and holder.current() is None  # nothing anywhere yet

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(mlflow_tmp)
    try:
        exp = mlflow.set_experiment("registry-test")
        with mlflow.start_run(experiment_id=exp.experiment_id):
            info = pyfunc.log_model(loaded_model, name="model", registered_model_name=name, input_example_rows=None)
        mlflow.MlflowClient().set_registered_model_alias(name, "champion", info.registered_model_version)
    finally:
        mlflow.set_tracking_uri(previous)
    assert holder.refresh() is True
    cur = holder.current()
    assert cur.source == "mlflow-registry" and cur.version == str(info.registered_model_version)
    assert cur.describe()["alias"] == "champion"
    assert holder.refresh() is False  # unchanged: nothing reloaded

    export_version(model_dirs, name, "2")  # an S3 export takes precedence
    assert holder.refresh() is True
    cur = holder.current()
    assert cur.source == "s3-manifest" and cur.version == "2" and cur.describe()["metrics"] == {"f1": 0.7}
    assert holder.metrics.model_reloads.total() == 1


def test_a_champion_that_cannot_score_is_refused(loaded_model, monkeypatch):
    """The self-check runs before a loaded champion is installed: a broken one never serves, the old one goes on."""
    import numpy as np

    from inference.model_loader import LoadedModel
    from petrostream.model import AnomalyModel

    class BrokenDetector:
        def score_samples(self, X):
            return np.full(len(X), np.nan)

    holder = ModelHolder(metrics=Metrics(), poll_s=0, use_mlflow=False)
    good = LoadedModel(loaded_model, "m", "1", "local", identity="1")
    holder.set(good)
    broken = AnomalyModel(loaded_model.feature_config, BrokenDetector(), loaded_model.threshold)
    monkeypatch.setattr(holder, "_resolve", lambda: LoadedModel(broken, "m", "2", "s3-manifest", identity="2"))
    assert holder.refresh() is False
    assert holder.current() is good
    assert "non-finite" in (holder.last_error or "")
    assert holder.metrics.model_errors.total() == 1
