"""Model contract: predict == stream scorer on real data, alignment, persistence, pyfunc in a fresh process."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import IsolationForest
from sklearn.preprocessing import StandardScaler

from petrostream.dataset import discover, read_instance
from petrostream.features import FeatureConfig, feature_matrix
from petrostream.model import ALARM_COL, SCORE_COL, AnomalyModel, ModelError


@pytest.fixture(scope="module")
def rows(threew_dir):
    """Raw rows of 5 real 3W instances (classes 2, 3, 4, 6 + a drawn one), capped at 5000 rows each."""
    infos = discover(threew_dir)
    picked = [next(i for i in infos if i.event_class == c and i.is_real) for c in (2, 3, 4, 6)]
    picked.append(next(i for i in infos if i.source == "DRAWN"))
    frames = []
    for info in picked:
        f = read_instance(info).iloc[:5000].reset_index()
        f.insert(0, "instance_id", info.instance_id)
        frames.append(f)
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def model(rows):
    cfg = FeatureConfig()
    X = feature_matrix(rows, cfg)[::5]  # a few thousand rows is enough for a contract test
    det = IsolationForest(n_estimators=50, max_samples=256, random_state=0).fit(X)
    thr = float(np.quantile(-det.score_samples(X), 0.95))
    return AnomalyModel.from_parts(detector=det, threshold=thr, feature_config=cfg,
                                   metadata={"family": "iforest", "params": {"n_estimators": 50}})


def test_predict_contract(model, rows):
    out = model.predict(rows)
    assert list(out.columns) == [SCORE_COL, ALARM_COL]
    assert out.index.equals(rows.index)
    assert out[SCORE_COL].dtype == np.float64 and np.isfinite(out[SCORE_COL]).all()
    assert set(out[ALARM_COL].unique()) <= {0, 1}
    assert (out[ALARM_COL] == (out[SCORE_COL] > model.threshold)).all()
    assert 0 < out[ALARM_COL].mean() < 0.5
    # anomaly_score = -score_samples (higher = more anomalous)
    X = feature_matrix(rows, model.feature_config)
    np.testing.assert_array_equal(out[SCORE_COL].to_numpy(), -model.detector.score_samples(X))


def test_predict_is_per_instance_and_order_independent(model, rows):
    ref = model.predict(rows)
    shuffled = rows.sample(frac=1.0, random_state=2)
    shuffled.index = shuffled.index * 10 + 3  # arbitrary index labels
    out = model.predict(shuffled)
    assert out.index.equals(shuffled.index)
    np.testing.assert_array_equal(out.to_numpy(), ref.loc[(shuffled.index - 3) // 10].to_numpy())
    one = rows[rows["instance_id"] == rows["instance_id"].iloc[-1]]
    np.testing.assert_array_equal(model.predict(one).to_numpy(), ref.loc[one.index].to_numpy())
    # without instance_id (one instance), timestamp as index: same scores
    alone = one.drop(columns="instance_id").set_index("timestamp")
    np.testing.assert_array_equal(model.predict(alone).to_numpy(), ref.loc[one.index].to_numpy())


def test_stream_scorer_equals_predict_row_for_row(model, rows):
    ref = model.predict(rows)
    # the stream interleaves instances in time order (as a consumer sees them), micro-batches of uneven size
    stream = rows.assign(seq=rows.groupby("instance_id").cumcount()).sort_values(["seq", "instance_id"],
                                                                                 kind="stable")
    scorer = model.stream_scorer()
    rng = np.random.default_rng(0)
    outs, i = [], 0
    while i < len(stream):
        m = int(rng.choice([1, 1, 2, 9, 50, 333, 1200]))
        outs.append(scorer.score(stream.iloc[i : i + m]))
        i += m
    out = pd.concat(outs)
    assert out.index.equals(stream.index)
    np.testing.assert_array_equal(out.loc[rows.index].to_numpy(), ref.to_numpy())
    assert sorted(scorer.instances()) == sorted(rows["instance_id"].unique())
    scorer.forget(rows["instance_id"].iloc[0])
    assert len(scorer.instances()) == 4
    assert scorer.score(rows.iloc[:0]).empty


def test_subset_of_variables_and_nan(model, rows):
    part = rows[rows["instance_id"] == rows["instance_id"].iloc[0]][["instance_id", "timestamp", "P-TPT", "T-TPT"]]
    part = part.assign(**{"T-TPT": part["T-TPT"].where(part.index % 7 != 0)})
    out = model.predict(part)
    assert out.index.equals(part.index) and np.isfinite(out[SCORE_COL]).all()


def test_save_load_roundtrip_with_scaler(model, rows, tmp_path):
    X = feature_matrix(rows, model.feature_config)[::10]
    scaler = StandardScaler().fit(X)
    det = IsolationForest(n_estimators=20, random_state=1).fit(scaler.transform(X))
    m = AnomalyModel(model.feature_config, det, 0.55, scaler, {"family": "iforest", "rows": np.int64(5)})
    m.save(tmp_path / "m")
    back = AnomalyModel.load(tmp_path / "m")
    assert back.threshold == 0.55 and back.metadata == {"family": "iforest", "rows": 5}
    assert back.feature_config == m.feature_config
    np.testing.assert_array_equal(back.predict(rows).to_numpy(), m.predict(rows).to_numpy())
    assert m.with_threshold(9.0).predict(rows)[ALARM_COL].sum() == 0


def test_bad_parts_are_refused(model, tmp_path):
    with pytest.raises(ModelError, match="score_samples"):
        AnomalyModel.from_parts(detector=object(), threshold=0.5)
    with pytest.raises(ModelError, match="threshold"):
        AnomalyModel.from_parts(detector=model.detector, threshold=float("nan"))
    with pytest.raises(ModelError, match="feature matrix"):
        model.score_features(np.zeros((3, 5)))
    with pytest.raises(ModelError, match="model.json"):
        AnomalyModel.load(tmp_path)


FRESH = textwrap.dedent("""
    import sys
    import mlflow, pandas as pd
    df = pd.read_parquet(sys.argv[1])
    out = mlflow.pyfunc.load_model("models:/petrostream-anomaly@champion").predict(df)
    assert isinstance(out, pd.DataFrame), type(out)
    out.to_parquet(sys.argv[2])
""")


def test_pyfunc_roundtrip_by_alias_in_a_fresh_process(model, rows, mlflow_tmp, tmp_path):
    import mlflow
    from mlflow import MlflowClient

    from petrostream import pyfunc

    mlflow.set_tracking_uri(mlflow_tmp)
    try:
        exp = mlflow.create_experiment("contract", artifact_location=(tmp_path / "artifacts").as_uri())
        with mlflow.start_run(experiment_id=exp):
            info = pyfunc.log_model(model, registered_model_name="petrostream-anomaly", input_example_rows=rows)
        MlflowClient().set_registered_model_alias("petrostream-anomaly", "champion", info.registered_model_version)
        back = pyfunc.load("models:/petrostream-anomaly@champion")
        assert isinstance(back, AnomalyModel) and back.threshold == model.threshold
    finally:
        mlflow.set_tracking_uri(None)

    sample = rows.groupby("instance_id").head(1500).drop(columns=["class"])
    sample.index = sample.index + 100_000  # non-default index must be preserved
    sample.to_parquet(tmp_path / "in.parquet")
    proc = subprocess.run([sys.executable, "-c", FRESH, str(tmp_path / "in.parquet"), str(tmp_path / "out.parquet")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert list(out.columns) == [SCORE_COL, ALARM_COL] and out.index.equals(sample.index)
    np.testing.assert_array_equal(out.to_numpy(), model.predict(sample).to_numpy())


def test_self_check_refuses_a_model_that_cannot_score():
    """The service runs self_check before a loaded champion serves: broken detectors never go live."""
    X = feature_matrix(pd.DataFrame({"P-PDG": np.linspace(1e7, 1.1e7, 600), "T-TPT": np.linspace(80, 81, 600)}))
    good = AnomalyModel(FeatureConfig(), IsolationForest(n_estimators=10, random_state=0).fit(X), 0.5)
    good.self_check()

    class NaNDetector:
        def score_samples(self, X):
            return np.full(len(X), np.nan)

    class WrongWidth:
        def score_samples(self, X):
            raise ValueError(f"X has {X.shape[1]} features, but the detector expects 3")

    with pytest.raises(ModelError, match="non-finite"):
        AnomalyModel(FeatureConfig(), NaNDetector(), 0.5).self_check()
    with pytest.raises(ModelError, match="cannot score: ValueError"):
        AnomalyModel(FeatureConfig(), WrongWidth(), 0.5).self_check()


def _forest_data(n: int = 3000, f: int = 12) -> np.ndarray:
    rng = np.random.default_rng(7)
    X = rng.normal(size=(n, f)).cumsum(axis=0).astype(np.float32)  # time-series-like: neighbours alike
    X[::97, 3] = np.nan  # NaNs and infinities reach the detector as they come
    X[::113, 5] = np.inf
    return X


@pytest.mark.parametrize("params", [
    {"n_estimators": 40, "max_samples": 256},
    {"n_estimators": 25, "max_samples": 0.5, "max_features": 0.5, "bootstrap": True},  # trees on feature subsets
    {"n_estimators": 3, "max_samples": 1},  # single-sample trees: depth 0, the score is set to 1 by definition
])
def test_iforest_fast_path_equals_score_samples_bit_for_bit(params):
    """The service scores an IsolationForest through petrostream.iforest: the scores must be sklearn's exactly."""
    from petrostream.iforest import LeafValueScorer

    X = _forest_data()
    det = IsolationForest(random_state=3, **params).fit(np.nan_to_num(X[::3], posinf=0.0))
    fast = LeafValueScorer.of(det)
    assert fast is not None
    for layout in (np.asfortranarray(X), np.ascontiguousarray(X), X.astype(np.float64), X[::-7]):
        np.testing.assert_array_equal(fast.score_samples(layout), det.score_samples(layout))
    assert fast.score_samples(X[:0]).shape == (0,)
    with pytest.raises(ValueError, match="fitted on 12"):
        fast.score_samples(X[:, :5])


def test_model_uses_the_fast_path_only_while_it_is_exact():
    X = _forest_data()
    cfg = FeatureConfig()
    Xf = feature_matrix(pd.DataFrame({"P-PDG": 1e7 + X[:, 0] * 1e4, "T-TPT": 80 + X[:, 1]}), cfg)
    model = AnomalyModel(cfg, IsolationForest(n_estimators=20, random_state=0).fit(Xf), 0.5)
    assert model._leaf_scorer() is not None
    np.testing.assert_array_equal(model.score_features(Xf), -model.detector.score_samples(Xf))
    model.detector.fit(Xf[::2])  # re-fitted: the fast path follows the new trees
    np.testing.assert_array_equal(model.score_features(Xf), -model.detector.score_samples(Xf))

    # a detector that is not exactly sklearn's IsolationForest keeps its own score_samples
    class Shifted(IsolationForest):
        def score_samples(self, X):
            return super().score_samples(X) - 1.0

    other = AnomalyModel(cfg, Shifted(n_estimators=5, random_state=0).fit(Xf), 0.5)
    assert other._leaf_scorer() is None
    np.testing.assert_array_equal(other.score_features(Xf), 1.0 - IsolationForest.score_samples(other.detector, Xf))

    # self_check turns the fast path off if it ever disagrees with sklearn (e.g. another sklearn's internals)
    model.self_check()
    assert model._leaf_scorer() is not None
    fast = model._leaf_scorer()
    tree, features, leaf_value = fast.trees[0]
    fast.trees[0] = (tree, features, leaf_value + 1.0)
    model.self_check()
    assert model._leaf_scorer() is None
    np.testing.assert_array_equal(model.score_features(Xf), -model.detector.score_samples(Xf))

    import pickle

    again = pickle.loads(pickle.dumps(model))
    assert again._leaf is None  # the cache is never pickled
    np.testing.assert_array_equal(again.score_features(Xf), -model.detector.score_samples(Xf))
