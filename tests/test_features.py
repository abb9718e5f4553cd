"""Features: batch == streaming row for row on real 3W instances, causality, no NaN, masks, config."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from petrostream import schema
from petrostream.dataset import discover, read_instance
from petrostream.features import (
    FeatureConfig,
    FeatureConfigError,
    StreamingFeatures,
    compute_features,
    compute_features_grouped,
    feature_matrix,
    feature_names,
)

BATCH_SIZES = [1, 1, 3, 17, 1, 64, 299, 300, 301, 2, 1000, 5, 4096]


def _uneven_batches(n: int, seed: int):
    rng = np.random.default_rng(seed)
    i = 0
    while i < n:
        m = int(rng.choice(BATCH_SIZES))
        yield i, min(n, i + m)
        i += m


@pytest.fixture(scope="module")
def real_instances(threew_dir):
    """One instance each of classes 2, 3, 4, 6 (real wells), a SIMULATED one and a DRAWN one, capped at 9000 rows."""
    infos = discover(threew_dir)
    picked = []
    for cls in (2, 3, 4, 6):
        picked.append(next(i for i in infos if i.event_class == cls and i.is_real))
    picked.append(next(i for i in infos if i.source == "SIMULATED"))
    picked.append(next(i for i in infos if i.source == "DRAWN"))
    return [(info, read_instance(info).iloc[:9000]) for info in picked]


def test_stream_equals_batch_row_for_row_on_real_instances(real_instances):
    cfg = FeatureConfig()
    for k, (info, df) in enumerate(real_instances):
        batch = compute_features(df, cfg)
        sf = StreamingFeatures(cfg)
        parts = [sf.update(info.instance_id, df.iloc[a:b]) for a, b in _uneven_batches(len(df), seed=k)]
        stream = pd.concat(parts)
        assert stream.index.equals(batch.index), info.instance_id
        # bit-exact, not approximately equal
        np.testing.assert_array_equal(stream.to_numpy(), batch.to_numpy(), err_msg=info.instance_id)
        assert sf.rows_seen(info.instance_id) == len(df)


def test_stream_with_interleaved_instances_equals_batch(real_instances):
    """A micro-batch carries rows of several instances (as the consumer sees them): update_frame per batch."""
    cfg = FeatureConfig(windows=(20, 120))
    frames = []
    for info, df in real_instances[:4]:
        f = df.iloc[:3000].reset_index()
        f.insert(0, "instance_id", info.instance_id)
        f["seq"] = np.arange(len(f))
        frames.append(f)
    stream = pd.concat(frames, ignore_index=True).sort_values(["seq", "instance_id"], kind="stable")
    sf = StreamingFeatures(cfg)
    out = pd.concat([sf.update_frame(stream.iloc[a:b]) for a, b in _uneven_batches(len(stream), seed=7)])
    assert out.index.equals(stream.index)
    out = out.sort_index()
    start = 0
    for f in frames:
        ref = compute_features(f, cfg).to_numpy()
        np.testing.assert_array_equal(out.iloc[start : start + len(f)].to_numpy(), ref)
        start += len(f)
    assert sorted(sf.keys()) == sorted(f["instance_id"].iloc[0] for f in frames)
    sf.forget(frames[0]["instance_id"].iloc[0])
    assert len(sf.keys()) == 3


def test_grouped_equals_per_instance(real_instances):
    cfg = FeatureConfig()
    frames = []
    for info, df in real_instances:
        f = df.iloc[:2500].reset_index()
        f.insert(0, "instance_id", info.instance_id)
        frames.append(f)
    allrows = pd.concat(frames, ignore_index=True)
    grouped = compute_features_grouped(allrows, cfg)
    ref = np.vstack([compute_features(f, cfg).to_numpy() for f in frames])
    np.testing.assert_array_equal(grouped.to_numpy(), ref)
    np.testing.assert_array_equal(feature_matrix(allrows, cfg), ref)


def test_long_instance_chunking_is_invisible(real_instances, monkeypatch):
    """Batch computation works in chunks with stream-like context; the chunk size must not matter."""
    from petrostream import features

    _, df = max(real_instances, key=lambda x: len(x[1]))
    ref = compute_features(df)
    monkeypatch.setattr(features, "CHUNK_ROWS", 777)
    np.testing.assert_array_equal(compute_features(df).to_numpy(), ref.to_numpy())


def test_causal_future_rows_do_not_change_past_features(real_instances):
    _, df = real_instances[0]
    df = df.iloc[:3000]
    cut = 1700
    base = compute_features(df)
    tampered = df.copy()
    rng = np.random.default_rng(3)
    cols = [c for c in tampered.columns if c in schema.VARIABLE_NAMES]
    tampered.iloc[cut:, [tampered.columns.get_loc(c) for c in cols]] = rng.normal(size=(len(df) - cut, len(cols))) * 1e6
    after = compute_features(tampered)
    np.testing.assert_array_equal(after.iloc[:cut].to_numpy(), base.iloc[:cut].to_numpy())
    assert not np.array_equal(after.iloc[cut:].to_numpy(), base.iloc[cut:].to_numpy())


def test_features_depend_only_on_the_last_max_window_rows(real_instances):
    """Dropping the beginning of an instance only changes the first max_window - 1 rows after the cut.

    (Up to float rounding: block alignment and reference level move with the cut; a stream of the same
    rows is bit-exact.)
    """
    _, df = real_instances[3]
    cfg = FeatureConfig()
    full = compute_features(df.iloc[:4000], cfg)
    later = compute_features(df.iloc[1000:4000], cfg)
    w = cfg.max_window
    np.testing.assert_allclose(later.iloc[w:].to_numpy(), full.iloc[1000 + w :].to_numpy(), rtol=1e-5, atol=1e-5)


def test_no_nan_float32_same_index_on_real_data(real_instances):
    for _, df in real_instances:
        f = compute_features(df)
        assert f.index.equals(df.index)
        assert list(f.columns) == feature_names(FeatureConfig())
        assert (f.dtypes == np.float32).all()
        assert np.isfinite(f.to_numpy()).all()


def test_labels_are_never_features():
    names = feature_names(FeatureConfig(variables=schema.VARIABLE_NAMES))
    assert not any(n.split("__")[0] in schema.LABEL_COLUMNS for n in names)
    df = pd.DataFrame({"P-TPT": np.linspace(1e7, 1.1e7, 400), "class": 0, "state": 1})
    df2 = df.assign(**{"class": 7, "state": 0})
    np.testing.assert_array_equal(compute_features(df).to_numpy(), compute_features(df2).to_numpy())


def _frame(n=600, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "P-PDG": 2.0e7 + rng.normal(0, 5e3, n),
        "P-TPT": 1.0e7 + rng.normal(0, 5e3, n),
        "T-TPT": 90 + rng.normal(0, 0.05, n),
    }, index=pd.date_range("2020-01-01", periods=n, freq="1s", name="timestamp"))


def test_frozen_sensor_and_missing_masks():
    cfg = FeatureConfig(variables=("P-PDG", "P-TPT", "T-TPT", "QGL"))
    df = _frame()
    df.loc[df.index[200:], "T-TPT"] = 91.25  # the sensor freezes at row 200
    df.loc[df.index[100:150], "P-TPT"] = np.nan  # a 50 s gap
    f = compute_features(df, cfg)
    assert f["T-TPT__frozen_30"].iloc[:200].eq(0).all()
    assert f["T-TPT__frozen_30"].iloc[229:].eq(1).all() and f["T-TPT__frozen_30"].iloc[200:228].eq(0).all()
    assert f["T-TPT__frozen_300"].iloc[499:].eq(1).all() and f["T-TPT__frozen_300"].iloc[:499].eq(0).all()
    assert f["T-TPT__z_300"].iloc[499:].eq(0).all()  # constant window: z is 0, not noise
    assert f["T-TPT__std_rel_300"].iloc[499:].eq(-7).all()
    assert f["P-TPT__missing"].iloc[100:150].eq(1).all() and f["P-TPT__missing"].drop(f.index[100:150]).eq(0).all()
    assert f["QGL__missing"].eq(1).all()  # absent column = all missing
    assert f["QGL__frozen_300"].eq(0).all() and f["QGL__z_30"].eq(0).all()
    assert np.isfinite(f.to_numpy()).all()


def test_dead_pdg_gauge_is_missing_not_frozen():
    cfg = FeatureConfig(variables=("P-PDG", "P-TPT"))
    df = _frame()
    df["P-PDG"] = 0.0  # dead downhole gauge
    f = compute_features(df, cfg)
    assert f["P-PDG__missing"].eq(1).all()
    assert f["P-PDG__frozen_300"].eq(0).all()
    assert f["P-PDG__z_30"].eq(0).all()
    # and equals a frame without the column at all
    np.testing.assert_array_equal(f.to_numpy(), compute_features(df.drop(columns="P-PDG"), cfg).to_numpy())


def test_scale_free_features_generalise_across_wells():
    """A well at another operating point (level x 1.7, same relative noise) gives the same features."""
    cfg = FeatureConfig(variables=("P-TPT", "T-TPT"))
    df = _frame()[["P-TPT", "T-TPT"]]
    a = compute_features(df, cfg)
    b = compute_features(df * 1.7, cfg)
    np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), atol=2e-3)


def test_valves_are_categorical_raw_values():
    cfg = FeatureConfig(windows=(5, 10), variables=("ESTADO-M1", "P-TPT"))
    n = 40
    df = pd.DataFrame({"ESTADO-M1": [1.0] * 20 + [0.5] * 5 + [np.nan] * 5 + [0.0] * 10,
                       "P-TPT": np.linspace(1e7, 1.01e7, n)})
    f = compute_features(df, cfg)
    assert "ESTADO-M1__z_5" not in f.columns
    assert f["ESTADO-M1__value"].tolist() == [1.0] * 20 + [0.5] * 5 + [-1.0] * 5 + [0.0] * 10
    assert f["ESTADO-M1__changed_5"].iloc[20:24].eq(1).all() and f["ESTADO-M1__changed_5"].iloc[4:20].eq(0).all()
    assert f["ESTADO-M1__missing"].sum() == 5


def test_trend_sign_follows_the_drift():
    n = 900
    df = pd.DataFrame({"P-TPT": np.r_[np.full(300, 1e7), np.linspace(1e7, 1.05e7, n - 300)]})
    f = compute_features(df, FeatureConfig(variables=("P-TPT",)))
    assert f["P-TPT__trend_300"].iloc[600:].gt(1).all()
    assert f["P-TPT__trend_300"].iloc[:300].eq(0).all()
    g = compute_features(df.iloc[::-1].reset_index(drop=True), FeatureConfig(variables=("P-TPT",)))
    assert g["P-TPT__trend_300"].iloc[300:600].lt(-1).all()


def test_empty_and_tiny_frames():
    cfg = FeatureConfig()
    assert compute_features(pd.DataFrame(columns=["P-TPT"]), cfg).shape == (0, len(feature_names(cfg)))
    one = compute_features(pd.DataFrame({"P-TPT": [1e7]}), cfg)
    assert one.shape == (1, len(feature_names(cfg))) and np.isfinite(one.to_numpy()).all()
    sf = StreamingFeatures(cfg)
    assert sf.update("k", pd.DataFrame({"P-TPT": []}, dtype=float)).shape[0] == 0


def test_config_roundtrip_and_validation():
    cfg = FeatureConfig(windows=(10, 60, 600), groups=("level", "masks"), variables=("P-TPT", "QGL"))
    d = json.loads(json.dumps(cfg.to_dict()))
    assert FeatureConfig.from_dict(d) == cfg and cfg.max_window == 600
    assert FeatureConfig.from_dict({}) == FeatureConfig()
    assert feature_names(cfg) == ["P-TPT__z_10", "P-TPT__z_60", "P-TPT__z_600", "P-TPT__frozen_10", "P-TPT__frozen_60",
                                  "P-TPT__frozen_600", "P-TPT__missing", "QGL__z_10", "QGL__z_60", "QGL__z_600",
                                  "QGL__frozen_10", "QGL__frozen_60", "QGL__frozen_600", "QGL__missing"]
    assert len(feature_names(FeatureConfig())) == 77
    for bad in ({"windows": (1,)}, {"groups": ("level", "magic")}, {"variables": ("P-NOPE",)}):
        with pytest.raises(FeatureConfigError):
            FeatureConfig(**bad)
    with pytest.raises(FeatureConfigError, match="version"):
        FeatureConfig.from_dict({"version": 99})


# ---------------------------------------------------------------------------------------------------------------------
# The compiled kernel (numba, the default engine) against the numpy reference implementation


def _both_engines(monkeypatch, fn):
    monkeypatch.setenv("PETROSTREAM_ENGINE", "numpy")
    ref = fn()
    monkeypatch.setenv("PETROSTREAM_ENGINE", "numba")
    return ref, fn()


def test_default_engine_is_the_compiled_kernel(monkeypatch):
    from petrostream import feature_kernel, features

    monkeypatch.delenv("PETROSTREAM_ENGINE", raising=False)
    assert features.compiled_engine()
    calls = []
    kernel = feature_kernel.window_features
    monkeypatch.setattr(feature_kernel, "window_features", lambda *a: calls.append(1) or kernel(*a))
    feature_matrix(pd.DataFrame({"P-PDG": np.linspace(1e7, 1.01e7, 50)}))
    assert calls  # the default engine really computes through the kernel
    monkeypatch.setenv("PETROSTREAM_ENGINE", "numpy")
    assert not features.compiled_engine()
    monkeypatch.setenv("PETROSTREAM_ENGINE", "fortran")
    with pytest.raises(FeatureConfigError, match="PETROSTREAM_ENGINE"):
        features.compiled_engine()


def test_kernel_equals_numpy_reference_on_real_instances(real_instances, monkeypatch):
    """Batch over several instances at once: every feature of every row, bit for bit."""
    frame = pd.concat([df.reset_index().assign(instance_id=iid) for iid, df in real_instances], ignore_index=True)
    ref, fast = _both_engines(monkeypatch, lambda: feature_matrix(frame))
    assert fast.shape == ref.shape == (len(frame), len(feature_names(FeatureConfig())))
    assert np.array_equal(fast, ref)


def test_kernel_stream_equals_numpy_reference_stream(real_instances, monkeypatch):
    """Interleaved micro-batches of uneven sizes (tails carried between calls), both engines."""
    frames = [df.reset_index().assign(instance_id=iid) for iid, df in real_instances[:3]]

    def run():
        sf = StreamingFeatures()
        out = []
        for k, (a, b) in enumerate(_uneven_batches(min(map(len, frames)), seed=3)):
            batch = pd.concat([f.iloc[a:b] for f in frames[k % 2 :] + frames[: k % 2]], ignore_index=True)
            out.append(sf.update_matrix(batch))
        return np.concatenate(out)

    ref, fast = _both_engines(monkeypatch, run)
    assert np.array_equal(fast, ref)


@pytest.mark.parametrize("config", [
    FeatureConfig(windows=(7, 45)),
    FeatureConfig(windows=(2, 3, 120), groups=("trend", "masks")),
    FeatureConfig(windows=(60,), groups=("spread",), variables=("P-TPT", "T-TPT", "QGL")),
    FeatureConfig(windows=(30,), groups=("level", "trend"), variables=tuple(sorted(schema.CATEGORICAL_VARIABLES))[:2]
                  + ("P-PDG",)),
])
def test_kernel_equals_reference_for_other_configs_and_awkward_data(config, monkeypatch):
    """Odd windows, group subsets, valves, dead and all-NaN sensors, constant runs, tiny instances."""
    rng = np.random.default_rng(7)
    parts = []
    for k, n in enumerate((1, 2, 5, 44, 46, 301, 1200)):
        df = pd.DataFrame({v: 1e6 + rng.normal(0, 50, n).cumsum() for v in config.variables})
        for v in config.variables:
            if v in schema.CATEGORICAL_VARIABLES:
                df[v] = rng.choice([0.0, 0.5, 1.0, np.nan], n)
        first = config.variables[0]
        df.loc[df.index[: n // 3], first] = np.nan  # a sensor that starts late
        if n > 100:
            df.loc[df.index[50:90], config.variables[-1]] = 3.25  # frozen stretch
            df.loc[df.index[95:97], config.variables[-1]] = np.inf  # non-finite -> missing
        if "P-PDG" in df:
            df.loc[df.index[::7], "P-PDG"] = 0.0  # dead gauge readings
        if k == 3:
            df[config.variables[-1]] = np.nan  # never seen in this instance
        parts.append(df.assign(instance_id=f"i{k}"))
    frame = pd.concat(parts, ignore_index=True)
    ref, fast = _both_engines(monkeypatch, lambda: feature_matrix(frame, config))
    assert np.array_equal(fast, ref)
    assert not np.isnan(fast).any()
