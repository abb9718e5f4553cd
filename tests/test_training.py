"""Training: grouped splits without leakage, bounded sampling, a real (small) tuning run registered as
challenger and loaded by alias in a fresh process, its report artifacts, resumable studies, the CLI."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from petrostream.dataset import discover, read_instance

# A small, real subset of the shared 3W sample that keeps every split stratum populated: real wells with a
# normal prefix (classes 2, 6), real wells without (3, 4), simulated and hand-drawn instances.
SMALL_SET = [
    "1/DRAWN_00003", "1/DRAWN_00005", "2/SIMULATED_00001", "2/SIMULATED_00002", "3/SIMULATED_00016",
    "6/SIMULATED_00001", "6/SIMULATED_00002",
    "2/WELL-00003_*", "2/WELL-00009_*", "2/WELL-00011_*", "2/WELL-00011_*#2", "6/WELL-00004_*", "2/WELL-00010_*",
    "4/WELL-00001_*", "4/WELL-00002_*", "4/WELL-00005_*", "3/WELL-00014_*", "4/WELL-00010_*",
]
ROWS_AROUND_ONSET = 700


def make_small_dir(src: Path, dest: Path, rows: int = ROWS_AROUND_ONSET) -> Path:
    """Copy SMALL_SET from the real sample, truncated to ``rows`` before and after the first event row
    (instances without normal rows: their first 2*rows rows). Same file names, so the same split groups."""
    for pattern in SMALL_SET:
        pat, _, nth = pattern.partition("#")
        matches = sorted(src.glob(pat + ".parquet"))
        if not matches:
            continue
        path = matches[min(int(nth or 1), len(matches)) - 1]
        df = read_instance(path)
        event = np.flatnonzero(df["class"].fillna(0).to_numpy() != 0)
        onset = int(event[0]) if len(event) else 0
        start = max(0, onset - rows) if onset else 0
        out = dest / path.parent.name / path.name
        out.parent.mkdir(parents=True, exist_ok=True)
        df.iloc[start : start + 2 * rows].to_parquet(out)
    return dest


@pytest.fixture(scope="module")
def small_dir(threew_dir, tmp_path_factory) -> Path:
    return make_small_dir(threew_dir, tmp_path_factory.mktemp("small3w"))


# ------------------------------------------------------------------------------------------------ splits


def test_split_has_no_well_on_two_sides_and_is_deterministic(threew_dir):
    from training.data import SPLITS, check_no_leakage, make_splits

    a = make_splits(threew_dir, seed=0)
    b = make_splits(threew_dir, seed=0)
    other_seed = make_splits(threew_dir, seed=7, with_fingerprints=False)
    check_no_leakage(a)

    side: dict[str, set[str]] = {}
    for split in SPLITS:
        for info in a.infos[split]:
            side.setdefault(info.group, set()).add(split)
    assert all(len(s) == 1 for s in side.values()), {g: s for g, s in side.items() if len(s) > 1}
    real_wells = {s: {i.well_id for i in a.infos[s] if i.is_real} for s in SPLITS}
    assert not (real_wells["train"] & real_wells["validation"]) and not (real_wells["holdout"] & real_wells["train"])
    assert all(real_wells[s] for s in SPLITS), real_wells  # every split judged on real wells
    # every split has instances with normal rows (classes with a normal prefix)
    assert all(any(i.event_class in (1, 2, 6) for i in a.infos[s]) for s in SPLITS)

    # deterministic and recorded
    assert a.assignment == b.assignment and a.fingerprints == b.fingerprints
    assert set(a.fingerprints) == {"train", "validation", "holdout", "all"}
    doc = json.loads(a.to_json())
    assert doc["files"]["holdout"] == a.files("holdout") and doc["fingerprints"]["holdout"] == a.fingerprints["holdout"]
    # the holdout is frozen: it does not depend on the seed (the folds do)
    assert other_seed.files("holdout") == a.files("holdout")
    assert sum(len(other_seed.infos[s]) for s in SPLITS) == len(discover(threew_dir))
    # development folds: validation is fold 0, train the others; every fold has a real well with normal rows
    assert {a.folds[i.group] for i in a.infos["validation"]} == {0}
    assert 0 not in {a.folds[i.group] for i in a.infos["train"]}
    for k in range(a.n_folds):
        assert any(i.is_real and i.event_class in (2, 6) for i in a.development if a.folds[i.group] == k)


def test_leakage_check_catches_a_well_on_two_sides(threew_dir):
    from training.data import SplitError, check_no_leakage, make_splits

    plan = make_splits(threew_dir, with_fingerprints=False)
    moved = next(i for i in plan.infos["train"] if i.is_real)
    plan.infos["holdout"].append(moved)
    with pytest.raises(SplitError, match=moved.group):
        check_no_leakage(plan)


def test_sampling_is_bounded_and_causal_features_come_from_whole_instances(small_dir):
    from petrostream.features import FeatureConfig, compute_features, feature_names
    from training.data import build_fit_and_eval

    infos = discover(small_dir, classes=[2])[:3]
    cfg = FeatureConfig(windows=(30, 300))
    fit, ev = build_fit_and_eval(infos, lambda f: compute_features(f, cfg), max_rows=50, max_normal=200, stride=7,
                                 seed=1, progress=False)
    assert list(fit.X.columns) == feature_names(cfg) and fit.X.dtypes.eq("float32").all()
    for info in infos:
        frame = read_instance(info)
        mine = fit.meta["instance_id"] == info.instance_id
        normal = int((frame["class"] == 0).sum())
        assert (fit.meta.loc[mine, "label"] == 0).sum() == min(normal, 200)
        assert (fit.meta.loc[mine, "label"] != 0).sum() <= 50
        assert (ev.meta["instance_id"] == info.instance_id).sum() == math.ceil(len(frame) / 7)
        # the kept rows carry the features of the whole-instance computation (no per-sample recomputation)
        full = compute_features(frame.drop(columns="class"), cfg)
        ts = ev.meta.loc[ev.meta["instance_id"] == info.instance_id, "timestamp"].to_numpy()
        np.testing.assert_array_equal(ev.X[ev.meta["instance_id"] == info.instance_id].to_numpy(),
                                      full.loc[ts].to_numpy())
    again, _ = build_fit_and_eval(infos, lambda f: compute_features(f, cfg), max_rows=50, max_normal=200,
                                  stride=None, seed=1, progress=False)
    pd.testing.assert_frame_equal(again.meta, fit.meta)  # seeded: the same sample every time


def test_objective_definition():
    from training.tuning import objective_value

    j, parts = objective_value({"recall_at_1pct_fpr": 0.5, "event_detection_rate": 1.0, "roc_auc": 0.9,
                                "false_alarms_per_hour": 2.0})
    assert j == pytest.approx(0.5 * 0.5 + 0.3 * 1.0 + 0.2 * 0.9 - 0.02 * 2.0)
    assert parts["false_alarm_penalty"] == pytest.approx(-0.04)
    # undefined metrics count as 0, the penalty is capped
    assert objective_value({"roc_auc": float("nan"), "false_alarms_per_hour": 1e6})[0] == pytest.approx(-0.2)


def test_search_never_uses_well_identity_masks_and_iforest_starts_from_the_transferring_config(tmp_path):
    """The masks group (a variable missing/frozen for a whole well = which well it is) is not in the search space
    of any profile, nor in any enqueued default; iforest starts from the configuration that transfers to unseen
    wells (windows 60/600 s, level + trend, 100 trees on 256 rows, a third of the features)."""
    from training.tuning import TrainOptions, config_from_params, default_trial_params

    for profile in ("quick", "full"):
        opts = TrainOptions.from_profile(profile, data_dir=tmp_path)
        assert "masks" not in opts.groups and {"level", "trend"} <= set(opts.groups)
        for fam in opts.families:
            params = default_trial_params(fam, opts)
            assert "group.masks" not in params
            assert "masks" not in config_from_params(params, opts).groups
        first = config_from_params(default_trial_params("iforest", opts), opts)
        assert first.groups == ("level", "trend") and first.windows == (60, 600)
        assert first.params == {"n_estimators": 100, "max_samples": 256, "max_features": 0.33}
    opts.windows = [(30, 300)]  # the preferred windows are not searched: the first searched ones are used
    assert config_from_params(default_trial_params("iforest", opts), opts).windows == (30, 300)


# ------------------------------------------------------------------------------------------------ training run


def test_training_run_registers_tracks_and_resumes(small_dir, mlflow_tmp):
    """A real study on the small subset (3 trials, two families): registered as challenger, loadable by alias in
    a fresh process, tracked (nested trials, report, model card), and resumable from its Optuna storage."""
    from training.tuning import TrainOptions, run_training

    opts = TrainOptions.from_profile("quick", data_dir=small_dir, trials=3, families="iforest,lof", eval_stride=3,
                                     progress=False)
    opts.windows = [(30, 300)]
    result = run_training(opts)
    assert result.registered_version == "1"
    assert result.holdout.n_instances >= 3 and result.holdout.n_event_instances >= 1
    _check_fresh_process_load(small_dir)
    _check_tracking(result)
    _check_resume(result, opts, mlflow_tmp)


def _check_fresh_process_load(small_dir: Path) -> None:
    probe = next(iter(sorted(small_dir.glob("2/WELL-*.parquet"))))
    code = f"""
import json, sys
import mlflow, pandas as pd
df = pd.read_parquet({str(probe)!r}).drop(columns=["class"]).reset_index()
df.insert(0, "instance_id", "probe")
df.index = df.index + 1000  # a non-default index must come back aligned
model = mlflow.pyfunc.load_model("models:/petrostream-anomaly@challenger")
out = model.predict(df)
print(json.dumps({{"columns": list(out.columns), "n": len(out), "aligned": bool((out.index == df.index).all()),
                  "alarms": sorted(set(int(v) for v in out["is_anomaly"])),
                  "finite": bool(out["anomaly_score"].notna().all()),
                  "training_imported": any(m == "training" or m.startswith("training.") for m in sys.modules)}}))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["columns"] == ["anomaly_score", "is_anomaly"]
    assert got["n"] == len(pd.read_parquet(probe)) and got["aligned"] and got["finite"]
    assert set(got["alarms"]) <= {0, 1}
    assert not got["training_imported"]  # serving a model never needs the training package


def _check_tracking(result) -> None:
    import mlflow
    from mlflow import MlflowClient

    client = MlflowClient()
    parent = client.get_run(result.parent_run_id)
    assert parent.data.tags["data_fingerprint"] == result.plan.fingerprints["all"]
    assert parent.data.tags["split_fp_holdout"] == result.plan.fingerprints["holdout"]
    assert parent.data.tags["git_sha"]
    for m in ("holdout_roc_auc", "holdout_recall_at_1pct_fpr", "holdout_event_detection_rate",
              "holdout_false_alarms_per_hour", "holdout_objective", "best_val_objective", "latency_ms_per_1k_rows"):
        assert m in parent.data.metrics, m
    trials = mlflow.search_runs([parent.info.experiment_id],
                                filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert len(trials) == 3
    assert set(trials["params.family"]) == {"iforest", "lof"}  # both families competed on the same wells
    assert trials["metrics.objective"].notna().any() and trials["tags.data_fingerprint"].nunique() == 1
    assert "params.group.masks" not in trials.columns and "masks" not in result.best.config.groups
    assert 1 <= len(result.best.fold_objectives) <= result.plan.n_folds  # J per fold, logged

    files = {a.path for a in client.list_artifacts(parent.info.run_id, "report")}
    for name in ("confusion_matrix.png", "pr_curve.png", "detection_delay_hist.png", "per_class_holdout.csv",
                 "per_class_holdout.md", "family_comparison.csv", "model_card.md"):
        assert f"report/{name}" in files, (name, files)
    assert "split.json" in {a.path for a in client.list_artifacts(parent.info.run_id)}
    card = mlflow.artifacts.load_text(f"runs:/{parent.info.run_id}/report/model_card.md")
    for needle in ("0.727", "0.882", "recall_at_1pct_fpr", "never seen", "Per class", "Detector families"):
        assert needle in card, needle
    png = Path(mlflow.artifacts.download_artifacts(f"runs:/{parent.info.run_id}/report/pr_curve.png"))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    mv = client.get_model_version_by_alias("petrostream-anomaly", "challenger")
    assert str(mv.version) == result.registered_version
    assert mv.tags["split_fp_holdout"] == result.plan.fingerprints["holdout"] and Path(mv.tags["data_dir"]).is_dir()


def _check_resume(result, opts, tracking_uri: str) -> None:
    import optuna

    from training.tuning import optuna_storage, run_training

    db = Path(tracking_uri.removeprefix("sqlite:///"))
    assert optuna_storage() == f"sqlite:///{db.parent / 'optuna.db'}"
    opts.trials, opts.register = 1, False
    again = run_training(opts)
    assert again.study_name == result.study_name and again.registered_version is None
    study = optuna.load_study(study_name=result.study_name, storage=optuna_storage())
    assert len(study.trials) == 4


def test_cli_rejects_a_bad_profile_in_one_line(small_dir, capsys):
    from petrostream.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["train", "--data", str(small_dir), "--profile", "huge"])
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: unknown profile 'huge'")
