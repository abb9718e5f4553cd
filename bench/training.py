"""Training: wall time and peak memory of ``petrostream train --profile quick`` (and ``full`` with
``--full-training``) in a temporary MLflow store, and feature extraction (``features.compute_features`` over real
instances) against a naive per-row Python loop computing the same features over a small slice.

The quick training is also where the model every service figure uses comes from (``served_model``): the version it
registers is exported by ``petrostream export`` to the emulator's models bucket and loaded from there, the way
``make train`` + ``make promote`` feed the service (``--smoke``: a tiny real training instead of the quick
profile)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from bench.common import (
    MODEL_NAME,
    BenchModel,
    Child,
    Context,
    child_env,
    cli,
    describe_model,
    detector_facts,
    export_facts,
    measure,
    ratio,
    rnd,
    say,
)

TIMEOUT_S = {"quick": 1800.0, "full": 4 * 3600.0}


# ---------------------------------------------------------------------------------------------- naive features


def _log_rel(ratio_: float, n: int) -> float:
    from petrostream.features import LOG_REL_MAX, LOG_REL_MIN

    if n < 2:
        return LOG_REL_MIN
    r = float(np.nan_to_num(ratio_, nan=0.0, posinf=10**LOG_REL_MAX, neginf=-1e308))
    return float(np.log10(min(max(r, 10**LOG_REL_MIN), 10**LOG_REL_MAX)))


def _half_mean(x: np.ndarray, end: int, h: int) -> tuple[float, int]:
    seg = [a for a in x[max(0, end - h + 1) : end + 1].tolist() if a == a]
    return (sum(seg) / max(len(seg), 1), len(seg))


def naive_features(frame, config) -> dict[str, list[float]]:
    """The features of ``petrostream.features`` (continuous variables), one row at a time with plain loops over
    each trailing window: what a first, per-row implementation looks like."""
    from petrostream import features as F

    X = F.raw_matrix(frame, config)
    n_rows = len(X)
    out: dict[str, list[float]] = {}
    for j, v in enumerate(config.variables):
        x = X[:, j]
        for t in range(n_rows):
            xt = x[t]
            for w in config.windows:
                win = x[max(0, t - w + 1) : t + 1]
                vals = [a for a in win.tolist() if a == a]
                n = len(vals)
                hi, lo = (max(vals), min(vals)) if vals else (float("-inf"), float("-inf"))
                s = sum(vals)
                q = sum(a * a for a in vals)
                mean = s / max(n, 1)
                level = max(abs(mean), F.ABS_FLOOR)
                std = 0.0 if hi == lo else max(q / max(n, 1) - mean * mean, 0.0) ** 0.5
                z = 0.0
                if n >= 2 and xt == xt:
                    z = min(max((xt - mean) / max(std, F.REL_FLOOR * level), -F.Z_CLIP), F.Z_CLIP)
                h = w // 2
                trend = 0.0
                if t >= h:
                    m_new, n_new = _half_mean(x, t, h)
                    m_old, n_old = _half_mean(x, t - h, h)
                    if n_new > 0 and n_old > 0:
                        d = (m_new - m_old) / level
                        trend = min(max(float(np.arcsinh(d / F.TREND_SCALE)), -F.TREND_CLIP), F.TREND_CLIP)
                row = {
                    f"{v}__z_{w}": z,
                    f"{v}__std_rel_{w}": _log_rel(std / level, n),
                    f"{v}__range_rel_{w}": _log_rel((hi - lo) / level, n),
                    f"{v}__trend_{w}": trend,
                    f"{v}__frozen_{w}": float(n >= max(2, w // 2) and hi == lo),
                }
                for k, val in row.items():
                    out.setdefault(k, []).append(val)
            out.setdefault(f"{v}__missing", []).append(float(xt != xt))
    return out


def _features(ctx: Context) -> dict[str, Any]:
    from petrostream import schema
    from petrostream.dataset import read_instance
    from petrostream.features import FeatureConfig, compute_features, warm_up

    warm_up()  # load the compiled kernel (numba import + disk cache) before the clock starts, as services do
    z = ctx.sizes
    config = FeatureConfig()
    frames = []
    for info in ctx.pick(z.feature_instances):
        df = read_instance(info)
        frames.append(df.head(z.feature_rows) if z.feature_rows else df)
    rows = sum(len(f) for f in frames)
    with measure() as m:
        for f in frames:
            compute_features(f, config)
    vec = {"instances": len(frames), "rows": rows, "cpu_s": rnd(m.cpu), "wall_s": rnd(m.wall),
           "rows_per_cpu_s": rnd(rows / m.cpu, 1) if m.cpu else None,
           "rows_per_s_wall": rnd(rows / m.wall, 1) if m.wall else None}
    say("training", f"features.compute_features {vec['rows_per_cpu_s']:,.0f} rows/s per core "
                    f"({rows:,} rows of {len(frames)} instances)")

    continuous = all(not schema.VARIABLE_BY_NAME[v].categorical for v in config.variables)
    slice_ = max(frames, key=len).head(z.naive_feature_rows)
    with measure() as mn:
        naive = naive_features(slice_, config)
    ref = compute_features(slice_, config)
    cols = [c for c in ref.columns if c in naive]
    a = np.column_stack([np.asarray(naive[c], dtype="float64") for c in cols])
    b = ref[cols].to_numpy(dtype="float64")
    diff = np.abs(a - b)
    nrows = len(slice_)
    base = {"rows": nrows, "cpu_s": rnd(mn.cpu), "wall_s": rnd(mn.wall),
            "rows_per_cpu_s": rnd(nrows / mn.cpu, 1) if mn.cpu else None,
            "features_compared": len(cols), "all_features": len(ref.columns),
            "max_abs_diff_vs_vectorised": rnd(float(diff.max()), 6) if diff.size else None,
            "share_equal_within_1e-4": rnd(float(np.isclose(a, b, rtol=1e-4, atol=1e-4).mean()), 5)
            if diff.size else None,
            "variables_all_continuous": continuous}
    r = ratio(vec["rows_per_cpu_s"], base["rows_per_cpu_s"])
    say("training", f"naive per-row loop {base['rows_per_cpu_s']:,.0f} rows/s per core ({nrows:,} rows); "
                    f"vectorised is {r}x faster")
    return {"vectorised": vec, "naive_per_row_loop": base, "ratio": r}


# ---------------------------------------------------------------------------------------------- train CLI


def _tracking_uri(ctx: Context, label: str) -> str:
    """The temporary MLflow store of the training run ``label`` (its folder holds the run's other state too)."""
    return f"sqlite:///{ctx.tmp / f'train-{label}' / 'mlflow.db'}"


def _training_env(ctx: Context, label: str) -> dict[str, str]:
    """The environment of ``petrostream train``/``export`` against the temporary store of run ``label``."""
    d = ctx.tmp / f"train-{label}"
    uri = _tracking_uri(ctx, label)
    return child_env(PETROSTREAM_MLFLOW_TRACKING_URI=uri, MLFLOW_TRACKING_URI=uri,
                     PETROSTREAM_MLFLOW_ARTIFACT_ROOT=str(d / "artifacts"),
                     PETROSTREAM_OPTUNA_STORAGE=f"sqlite:///{d / 'optuna.db'}",
                     PETROSTREAM_REPORTS_DIR=str(d / "reports"), PETROSTREAM_MODEL_NAME=MODEL_NAME)


def _train(ctx: Context, profile: str, extra: tuple[str, ...] = (), label: str | None = None) -> dict[str, Any]:
    """``petrostream train --profile <profile> <extra>`` in its own temporary MLflow store (``train-<label>``)."""
    label = label or profile
    d = ctx.tmp / f"train-{label}"
    d.mkdir(parents=True, exist_ok=True)
    env = _training_env(ctx, label)
    say("training", f"{' '.join(['petrostream train --profile', profile, *extra])} (temporary MLflow store) ...")
    child = Child(cli("train", "--data", str(ctx.data), "--profile", profile, *extra), d / "train.log", env,
                  sample_s=1.0, tree=True)
    finished = child.wait(TIMEOUT_S[profile])
    if not finished:
        child.stop(grace=30)
    mem = child.memory()
    peak = mem.get("peak_rss_mib")
    out = {
        "command": " ".join(["petrostream train --data <data> --profile", profile, *extra]),
        "exit_code": child.returncode,
        "ok": finished and child.returncode == 0,
        "wall_s": rnd(child.wall, 1),
        "cpu_s": rnd(child.cpu_s, 1),
        "peak_rss_mib": peak,
        "memory": mem,
        "stdout_tail": child.stdout().strip().splitlines()[-12:],
    }
    if not finished:
        out["error"] = f"timed out after {TIMEOUT_S[profile]:.0f} s"
    elif child.returncode != 0:
        out["error"] = child.tail(3)
    say("training", f"train --profile {profile}: {'ok' if out['ok'] else 'FAILED'} in {out['wall_s']} s, "
                    f"peak RSS {peak} MiB" + ("" if out["ok"] else f" ({out.get('error', '')[:200]})"))
    return out


def trained(ctx: Context) -> tuple[str, dict[str, Any]]:
    """The training the product runs by default (``make train``: the quick profile; ``--smoke``: a tiny one), once
    per bench run: (label, result of ``_train``)."""
    if "trained" not in ctx.cache:
        if ctx.sizes.train_in_run:
            ctx.cache["trained"] = ("quick", _train(ctx, "quick"))
        else:
            ctx.cache["trained"] = ("tiny", _train(ctx, "quick", ctx.sizes.tiny_train_args, label="tiny"))
    return ctx.cache["trained"]


def _export(ctx: Context, label: str) -> str:
    """``petrostream export --version <challenger>``: the version training registered -> the models bucket as the
    champion the service pulls. Returns the version."""
    from mlflow import MlflowClient

    version = MlflowClient(tracking_uri=_tracking_uri(ctx, label)).get_model_version_by_alias(
        MODEL_NAME, "challenger").version
    child = Child(cli("export", "--version", str(version)), ctx.tmp / f"export-{label}.log",
                  _training_env(ctx, label))
    if not child.wait(300) or child.returncode != 0:
        child.stop()
        raise RuntimeError(f"petrostream export failed (exit {child.returncode}): {child.tail(3)}")
    return str(version)


def served_model(ctx: Context) -> BenchModel:
    """The model ``trained`` registered, exported and loaded back from the models bucket as the service loads its
    champion (``model_store.read_manifest`` + ``pull`` + ``pyfunc.load``). Falls back to the reference forest,
    with a note, when training or the export fails."""
    from petrostream import model_store, pyfunc

    label, result = trained(ctx)
    try:
        if not result["ok"]:
            raise RuntimeError(f"petrostream train failed: {str(result.get('error', ''))[:300]}")
        version = _export(ctx, label)
        manifest = model_store.read_manifest()
        if manifest is None:
            raise RuntimeError("no champion manifest in the models bucket after petrostream export")
        local = model_store.pull(manifest, ctx.tmp / "served-model")
        model = pyfunc.load(local)
    except Exception as exc:
        note = (f"The model training registers could not be served ({type(exc).__name__}: {str(exc)[:300]}); the "
                "service figures use the reference forest instead.")
        say("training", note)
        ctx.notes.append(note)
        return ctx.reference_model(export=True)
    facts = {"source": f"petrostream train --profile quick{' (tiny)' if label == 'tiny' else ''}, "
                       f"registered v{version}, exported by petrostream export",
             **detector_facts(model), **export_facts(manifest)}
    say("training", f"served model: {describe_model(facts)} (v{version}, exported "
                    f"{facts['export_bytes'] / 1024:,.0f} KiB)")
    return BenchModel(MODEL_NAME, version, model, Path(local), manifest, facts)


def run(ctx: Context) -> dict[str, Any]:
    result: dict[str, Any] = {"features": _features(ctx)}
    label, run_ = trained(ctx)  # already run if the inference section came first (it serves what this registers)
    result[f"train_{label}"] = run_
    if label == "tiny":
        result["train_quick"] = {"skipped": "--smoke: the quick profile takes minutes (run without --smoke)"}
    if ctx.full_training:
        result["train_full"] = _train(ctx, "full")
    else:
        result["train_full"] = {"skipped": "not run by default (up to an hour of tuning): pass --full-training"}
    return result
