"""The model contract shared by training and serving (pure: no mlflow, no boto3).

An ``AnomalyModel`` is: a ``FeatureConfig`` (how raw 3W rows become features), an optional fitted
scaler, a fitted ``detector`` with sklearn's ``score_samples`` (higher = more normal), a ``threshold``
on the anomaly score and JSON-safe ``metadata``.

* ``anomaly_score = -detector.score_samples(scaler.transform(features))``: higher = more anomalous.
* ``is_anomaly = anomaly_score > threshold`` (int 0/1).
* ``predict(df)`` scores raw rows of one or more instances causally per instance (one detector call);
  ``stream_scorer()`` does the same over micro-batches, keeping per-instance feature state, and gives
  the same result row for row.

``save(dir)`` / ``AnomalyModel.load(dir)`` write ``model.json`` (config, threshold, metadata, feature
names) plus ``detector.joblib`` (and ``scaler.joblib``): the format the MLflow adapter
(``petrostream.pyfunc``) ships inside its artifacts.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from petrostream import __version__, schema
from petrostream.errors import UserError
from petrostream.features import (
    KEY,
    FeatureConfig,
    StreamingFeatures,
    feature_matrix,
    feature_names,
    instance_codes,
)
from petrostream.iforest import LeafValueScorer

log = logging.getLogger(__name__)

SCORE_COL = "anomaly_score"
ALARM_COL = "is_anomaly"
OUTPUT_COLUMNS = (SCORE_COL, ALARM_COL)
FORMAT_VERSION = 1
MODEL_JSON = "model.json"
DETECTOR_FILE = "detector.joblib"
SCALER_FILE = "scaler.joblib"


class ModelError(UserError, ValueError):
    """A model that cannot be built, loaded or used as given (the message says why)."""


def _timestamps(df: pd.DataFrame) -> np.ndarray | None:
    if schema.TIMESTAMP in df.columns:
        return pd.to_datetime(df[schema.TIMESTAMP]).to_numpy()
    if df.index.name == schema.TIMESTAMP:
        return pd.DatetimeIndex(df.index).to_numpy()
    return None


def arrange(df: pd.DataFrame, by: str = KEY) -> np.ndarray | None:
    """Row positions that group ``df`` by instance (first-appearance order) and sort by time inside each.

    Returns None when ``df`` is already arranged (the documented input contract), so no copy is needed.
    """
    if len(df) == 0:
        return None
    codes = instance_codes(df, by)
    ts = _timestamps(df)
    grouped = int(np.count_nonzero(codes[1:] != codes[:-1])) + 1 == int(codes.max()) + 1
    ordered = ts is None or bool(np.all((ts[1:] >= ts[:-1]) | (codes[1:] != codes[:-1])))
    if grouped and ordered:
        return None
    keys = (codes,) if ts is None else (ts, codes)
    return np.lexsort(keys)


@dataclass
class AnomalyModel:
    feature_config: FeatureConfig
    detector: Any
    threshold: float
    scaler: Any = None
    metadata: dict[str, Any] | None = None
    # (the detector's fitted trees, their LeafValueScorer or None); False: self_check turned it off
    _leaf: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not callable(getattr(self.detector, "score_samples", None)):
            raise ModelError(f"detector {type(self.detector).__name__} has no score_samples(X)")
        if self.scaler is not None and not callable(getattr(self.scaler, "transform", None)):
            raise ModelError(f"scaler {type(self.scaler).__name__} has no transform(X)")
        try:
            self.threshold = float(self.threshold)
        except (TypeError, ValueError):
            raise ModelError(f"threshold must be a number, got {self.threshold!r}") from None
        if math.isnan(self.threshold):
            raise ModelError("threshold must not be NaN")
        self.metadata = dict(self.metadata or {})

    @classmethod
    def from_parts(cls, *, detector: Any, threshold: float, feature_config: FeatureConfig | None = None,
                   scaler: Any = None, metadata: dict[str, Any] | None = None) -> AnomalyModel:
        return cls(feature_config or FeatureConfig(), detector, threshold, scaler, metadata)

    # ---------------------------------------------------------------------------------------------- features, scores

    @property
    def feature_names(self) -> list[str]:
        return feature_names(self.feature_config)

    def features(self, df: pd.DataFrame) -> np.ndarray:
        """Feature matrix (n, F) float32 of raw rows, aligned with ``df`` row for row (any row order)."""
        order = arrange(df)
        if order is None:
            return feature_matrix(df, self.feature_config)
        X = np.empty((len(self.feature_names), len(df)), dtype=np.float32).T  # feature-major, as feature_matrix
        X[order] = feature_matrix(df.iloc[order], self.feature_config)
        return X

    def score_features(self, X: np.ndarray) -> np.ndarray:
        """Anomaly score (float64, higher = more anomalous) of a feature matrix."""
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != len(self.feature_names):
            raise ModelError(f"feature matrix must be (n, {len(self.feature_names)}), got {X.shape}")
        if len(X) == 0:
            return np.zeros(0)
        if self.scaler is not None:
            X = self.scaler.transform(X)
        fast = self._leaf_scorer()
        raw = fast.score_samples(X) if fast is not None else self.detector.score_samples(X)
        return -np.asarray(raw, dtype=np.float64)

    def _leaf_scorer(self) -> LeafValueScorer | None:
        """The IsolationForest fast path (``petrostream.iforest``) for the detector's current trees, if any."""
        if self._leaf is False:
            return None
        trees = getattr(self.detector, "estimators_", None)
        if self._leaf is None or self._leaf[0] is not trees:  # first use, or the detector was fitted again
            self._leaf = (trees, LeafValueScorer.of(self.detector))
        return self._leaf[1]

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_leaf": None}  # rebuilt on first use: never pickled with the model

    def _output(self, scores: np.ndarray, index: pd.Index) -> pd.DataFrame:
        return pd.DataFrame(
            {SCORE_COL: scores, ALARM_COL: (scores > self.threshold).astype(np.int32)}, index=index
        )

    def predict(self, df: pd.DataFrame) -> pd.DataFrame:
        """``anomaly_score`` / ``is_anomaly`` for raw rows of one or more instances, same index as ``df``.

        ``df``: ``instance_id`` (absent: one instance), ``timestamp`` column or index (absent: row order),
        any subset of the 3W variables (NaN allowed). Scored causally per instance, one detector call.
        """
        return self._output(self.score_features(self.features(df)), df.index)

    def self_check(self, rows: int = 400) -> None:
        """Score a few synthetic rows end to end (features + detector); raises ModelError if that fails.

        Run once after loading, before the model serves: it also compiles the feature kernel, so the
        first real micro-batch does not pay for that.
        """
        rng = np.random.default_rng(0)
        frame = pd.DataFrame({v: 1e5 + rng.normal(0, 1, rows).cumsum() for v in self.feature_config.variables})
        try:
            X = self.features(frame)
            scores = self.score_features(X)  # through the fast path, if the detector has one
        except Exception as exc:
            raise ModelError(f"model cannot score: {type(exc).__name__}: {str(exc)[:200]}") from exc
        if len(scores) != rows or not np.isfinite(scores).all():
            raise ModelError("model produced non-finite or missing scores on synthetic rows")
        if self._leaf_scorer() is not None:
            scaled = self.scaler.transform(X) if self.scaler is not None else X
            if not np.array_equal(scores, -self.detector.score_samples(scaled)):
                self._leaf = False  # keep sklearn's own scores: the fast path must be exact or off
                log.warning("IsolationForest fast path differs from score_samples: using score_samples")

    def stream_scorer(self) -> StreamScorer:
        return StreamScorer(self)

    def with_threshold(self, threshold: float) -> AnomalyModel:
        return AnomalyModel(self.feature_config, self.detector, threshold, self.scaler, dict(self.metadata or {}))

    def describe(self) -> dict[str, Any]:
        """JSON-safe summary (what ``model.json`` holds)."""
        return {
            "format_version": FORMAT_VERSION,
            "petrostream_version": __version__,
            "detector": f"{type(self.detector).__module__}.{type(self.detector).__name__}",
            "scaler": None if self.scaler is None else f"{type(self.scaler).__module__}.{type(self.scaler).__name__}",
            "threshold": self.threshold,
            "feature_config": self.feature_config.to_dict(),
            "feature_names": self.feature_names,
            "metadata": self.metadata,
        }

    # ---------------------------------------------------------------------------------------------- persistence

    def save(self, path: str | Path) -> Path:
        """Write the model to a directory (model.json + joblib files); returns the directory."""
        import joblib

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        joblib.dump(self.detector, path / DETECTOR_FILE)
        if self.scaler is not None:
            joblib.dump(self.scaler, path / SCALER_FILE)
        (path / MODEL_JSON).write_text(json.dumps(self.describe(), indent=2, default=_json_default) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> AnomalyModel:
        import joblib

        path = Path(path)
        try:
            doc = json.loads((path / MODEL_JSON).read_text())
        except FileNotFoundError:
            raise ModelError(f"{path}: not a saved AnomalyModel (no {MODEL_JSON})") from None
        if doc.get("format_version") != FORMAT_VERSION:
            raise ModelError(f"{path}: model format {doc.get('format_version')} unsupported (code: {FORMAT_VERSION})")
        config = FeatureConfig.from_dict(doc["feature_config"])
        if doc.get("feature_names") != feature_names(config):
            raise ModelError(f"{path}: feature names differ from what this code computes for the saved config")
        scaler = joblib.load(path / SCALER_FILE) if (path / SCALER_FILE).exists() else None
        return cls(config, joblib.load(path / DETECTOR_FILE), doc["threshold"], scaler, doc.get("metadata") or {})


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, (set, tuple)):
        return list(o)
    if isinstance(o, Path):
        return str(o)
    return str(o)


class StreamScorer:
    """Scores micro-batches of a stream, keeping per-instance feature state between calls.

    ``score(df)`` has the same contract as ``AnomalyModel.predict``; scoring an instance's rows in any
    split of consecutive micro-batches equals ``predict`` on the whole instance, row for row.
    """

    def __init__(self, model: AnomalyModel):
        self.model = model
        self.features = StreamingFeatures(model.feature_config)

    def score(self, df: pd.DataFrame) -> pd.DataFrame:
        if len(df) == 0:
            return self.model._output(np.zeros(0), df.index)
        frame = df if KEY in df.columns else df.assign(**{KEY: "_"})
        order = arrange(frame)
        if order is not None:
            frame = frame.iloc[order]
        X = self.features.update_matrix(frame)
        scores = self.model.score_features(X)
        if order is not None:
            out = np.empty_like(scores)
            out[order] = scores
            scores = out
        return self.model._output(scores, df.index)

    def forget(self, instance_id: Hashable) -> None:
        self.features.forget(instance_id)

    def instances(self) -> list[Hashable]:
        return self.features.keys()
