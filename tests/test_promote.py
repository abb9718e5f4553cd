"""Promotion: gates on the frozen holdout (a worse challenger is refused, a better one accepted), the history
in the models bucket and in MLflow, --force, --rollback, and export of the champion to the models bucket."""

from __future__ import annotations

import json
import uuid

import numpy as np
import pytest
from test_training import make_small_dir

from petrostream.cli import main


@pytest.fixture(scope="module")
def small_dir(threew_dir, tmp_path_factory):
    return make_small_dir(threew_dir, tmp_path_factory.mktemp("small3w-promote"))


@pytest.fixture
def model_name(monkeypatch, mlflow_tmp, emulator):
    """A model name of our own: the emulator's models bucket is shared by the whole test session."""
    from petrostream.settings import get_settings

    name = f"petrostream-anomaly-test-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("PETROSTREAM_MODEL_NAME", name)
    get_settings.cache_clear()
    return name


def train_good(data_dir) -> str:
    """A real (tiny) training run: one Isolation Forest trial, registered with alias challenger."""
    from training.tuning import TrainOptions, run_training

    opts = TrainOptions.from_profile("quick", data_dir=data_dir, trials=1, families="iforest", eval_stride=3,
                                     progress=False)
    opts.windows = [(30, 300)]
    return run_training(opts).registered_version


def register_bad(data_dir) -> str:
    """A deliberately useless challenger: an Isolation Forest fitted on random noise with a threshold that
    raises an alarm on every row."""
    import mlflow
    from sklearn.ensemble import IsolationForest

    from petrostream import pyfunc
    from petrostream.features import FeatureConfig, feature_names
    from petrostream.model import AnomalyModel
    from petrostream.settings import get_settings
    from training.data import make_splits
    from training.tracking import register_challenger, setup

    cfg = FeatureConfig(windows=(30, 300))
    noise = np.random.default_rng(0).normal(size=(500, len(feature_names(cfg)))).astype(np.float32)
    model = AnomalyModel(cfg, IsolationForest(n_estimators=20, random_state=0).fit(noise), threshold=-1e9,
                         metadata={"family": "noise"})
    setup()
    name = get_settings().model_name
    with mlflow.start_run(run_name="noise"):
        info = pyfunc.log_model(model, registered_model_name=name)
    version = str(info.registered_model_version)
    plan = make_splits(data_dir, with_fingerprints=True)
    register_challenger(name, version, {"data_dir": str(data_dir), "split_fp_holdout": plan.fingerprints["holdout"]})
    return version


def promote(*args: str) -> int:
    try:
        main(["promote", *args])
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def champion(name: str) -> str | None:
    from mlflow import MlflowClient

    from training.promote import version_by_alias

    mv = version_by_alias(MlflowClient(), name, "champion")
    return None if mv is None else str(mv.version)


def manifest(name: str) -> dict | None:
    from petrostream.model_store import read_manifest

    return read_manifest(name)


def test_gates_refuse_worse_accept_better_record_history_rollback_and_export(small_dir, model_name, capsys):
    from petrostream.model_store import load_champion
    from training.promote import history_key, mlflow_history, read_history

    # 1. first champion: nothing to compare with, absolute gates only; exported at once
    v1 = train_good(small_dir)
    assert promote() == 0
    assert champion(model_name) == v1
    assert manifest(model_name)["version"] == v1
    out = capsys.readouterr().out
    assert f"promoted {model_name} v{v1} to champion (was none)" in out and "[pass] data_suite" in out

    # 2. a worse challenger is refused: non-zero exit, the failed gates named, champion unchanged
    v2 = register_bad(small_dir)
    assert promote() == 1
    captured = capsys.readouterr()
    assert "refused" in captured.err and "normal_alarm_share" in captured.err and "objective" in captured.err
    assert "[FAIL] normal_alarm_share" in captured.out
    assert champion(model_name) == v1 and manifest(model_name)["version"] == v1

    # 3. --force overrides the gates, and says so in the record
    assert promote("--version", v2, "--force", "--reason", "test override") == 0
    assert champion(model_name) == v2

    # 4. a better challenger (a real model again) beats the forced bad champion
    v3 = train_good(small_dir)
    assert promote() == 0
    assert champion(model_name) == v3 and manifest(model_name)["version"] == v3
    capsys.readouterr()

    # 5. rollback restores the previous champion (and exports it); twice goes one further back
    assert promote("--rollback") == 0
    assert champion(model_name) == v2 and manifest(model_name)["version"] == v2
    assert promote("--rollback") == 0
    assert champion(model_name) == v1 and manifest(model_name)["version"] == v1
    assert promote("--rollback") == 1  # nothing before the first champion
    assert "nothing to roll back to" in capsys.readouterr().err

    # every decision is in the bucket's JSON lines and in MLflow, with who/when/from/to/metrics/gates
    history = read_history(model_name)
    assert [(r["action"], r["from_version"], r["to_version"]) for r in history] == [
        ("promote", None, v1), ("refused", v1, v2), ("promote", v1, v2), ("promote", v2, v3),
        ("rollback", v3, v2), ("rollback", v2, v1)]
    assert [r["forced"] for r in history] == [False, False, True, False, False, False]
    assert history[2]["reason"] == "test override"
    assert all(r["who"] and r["when"] for r in history)
    refused = history[1]
    assert {g["name"] for g in refused["gates"] if not g["passed"] and not g["skipped"]} >= {"normal_alarm_share"}
    assert refused["metrics"]["challenger"]["obs_fpr"] == 1.0 and "objective" in refused["metrics"]["champion"]
    assert refused["data"]["holdout_matches_training"] is True
    assert [(r["action"], r["to_version"]) for r in mlflow_history(model_name)] == [
        (r["action"], r["to_version"]) for r in history]
    assert history_key(model_name) == f"{model_name}/promotions.jsonl"

    # export: the champion lands in the models bucket with champion.json, and serving can pull and use it
    try:
        main(["export"])
    except SystemExit as exc:
        assert not exc.code
    doc = manifest(model_name)
    assert doc["version"] == v1 and doc["name"] == model_name and doc["files"]
    assert any(k.endswith("MLmodel") for k in doc["files"])
    model, man = load_champion()
    import pandas as pd

    probe = pd.read_parquet(next(iter(sorted(small_dir.glob("2/WELL-*.parquet"))))).drop(columns="class")
    scored = model.predict(probe.reset_index().assign(instance_id="p"))
    assert list(scored.columns) == ["anomaly_score", "is_anomaly"] and len(scored) == len(probe)
    assert json.loads(json.dumps(man))["version"] == v1


def test_gate_logic_and_champion_stack():
    from training.promote import Gate, GateLimits, champion_stack, evaluate_gates

    data_ok = Gate("data_suite", True, detail="ok")
    champ = {"objective": 0.60, "recall_at_1pct_fpr": 0.40, "false_alarms_per_hour": 1.0, "obs_fpr": 0.01,
             "latency_ms_per_1k_rows": 20.0}
    limits = GateLimits()
    within = {**champ, "objective": 0.59, "recall_at_1pct_fpr": 0.39}
    assert all(g.passed for g in evaluate_gates(within, champ, limits, data_ok))
    worse = {**champ, "objective": 0.50, "latency_ms_per_1k_rows": 900.0, "false_alarms_per_hour": 99.0}
    failed = {g.name for g in evaluate_gates(worse, champ, limits, data_ok) if not g.passed}
    assert failed == {"objective", "latency", "false_alarms_per_hour"}
    bad_data = Gate("data_suite", False, 2.0, 0.0, "2/5 holdout instances fail the raw suite")
    assert not evaluate_gates(champ, None, limits, bad_data)[0].passed
    assert GateLimits().override(max_latency_ms_per_1k=5.0, objective_tolerance=None).max_latency_ms_per_1k == 5.0

    hist = [{"action": "promote", "to_version": "1"}, {"action": "refused", "to_version": "2"},
            {"action": "promote", "to_version": "3"}, {"action": "rollback", "to_version": "1"},
            {"action": "promote", "to_version": "4"}]
    assert champion_stack(hist) == ["1", "4"]
