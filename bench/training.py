"""Training: wall time and peak memory of ``petrostream train --profile quick`` (and ``full`` with
``--full-training``) in a temporary MLflow store, and feature extraction (``features.compute_features`` over real
instances) against a naive per-row Python loop computing the same features over a small slice. Then the model that
training registered is loaded from that store (as MLflow serves it) and put through the inference section's
service-vs-bare-model measurement (``--smoke``: a tiny real training instead of the quick profile)."""

from __future__ import annotations

from typing import Any

import numpy as np

from bench.common import Child, Context, child_env, cli, describe_model, measure, ratio, rnd, say

TIMEOUT_S = {"quick": 1800.0, "full": 4 * 3600.0}
TRAINED_MODEL = "petrostream-anomaly"  # registered model name in the temporary store


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


def _train(ctx: Context, profile: str, extra: tuple[str, ...] = (), label: str | None = None) -> dict[str, Any]:
    """``petrostream train --profile <profile> <extra>`` in its own temporary MLflow store (``train-<label>``)."""
    label = label or profile
    d = ctx.tmp / f"train-{label}"
    d.mkdir(parents=True, exist_ok=True)
    uri = _tracking_uri(ctx, label)
    env = child_env(PETROSTREAM_MLFLOW_TRACKING_URI=uri, MLFLOW_TRACKING_URI=uri,
                    PETROSTREAM_MLFLOW_ARTIFACT_ROOT=str(d / "artifacts"),
                    PETROSTREAM_OPTUNA_STORAGE=f"sqlite:///{d / 'optuna.db'}",
                    PETROSTREAM_REPORTS_DIR=str(d / "reports"), PETROSTREAM_MODEL_NAME=TRAINED_MODEL)
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


def _serving_the_trained_model(ctx: Context, label: str) -> dict[str, Any]:
    """The inference section's service-vs-bare-model measurement with the model this training registered."""
    import mlflow

    from bench.inference import fraction_with
    from petrostream import pyfunc

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(_tracking_uri(ctx, label))
    try:
        model = pyfunc.load(f"models:/{TRAINED_MODEL}@challenger")
    except Exception as exc:  # the training figures stand on their own: report, do not fail the section
        return {"error": f"could not load the trained model: {type(exc).__name__}: {str(exc)[:200]}"}
    finally:
        mlflow.set_tracking_uri(previous)
    out = fraction_with(ctx, model)
    f = out["model"]
    say("training", f"serving the model train-{label} registered ({describe_model(f)}): "
                    f"{out['fraction_of_bare_model']} of "
                    f"the bare model's rate ({out['service_rows_per_cpu_s']:,.0f} vs "
                    f"{out['bare_model']['rows_per_cpu_s']:,.0f} rows/s per core)")
    return {"training": label, **out}


def run(ctx: Context) -> dict[str, Any]:
    result: dict[str, Any] = {"features": _features(ctx)}
    if ctx.sizes.train_in_run:
        result["train_quick"] = _train(ctx, "quick")
        trained = "quick" if result["train_quick"]["ok"] else None
    else:
        result["train_quick"] = {"skipped": "--smoke: the quick profile takes minutes (run without --smoke)"}
        result["train_tiny"] = _train(ctx, "quick", ctx.sizes.tiny_train_args, label="tiny")
        trained = "tiny" if result["train_tiny"]["ok"] else None
    if trained:
        result["serving_the_trained_model"] = _serving_the_trained_model(ctx, trained)
    if ctx.full_training:
        result["train_full"] = _train(ctx, "full")
    else:
        result["train_full"] = {"skipped": "not run by default (up to an hour of tuning): pass --full-training"}
    return result
