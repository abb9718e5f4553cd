"""Detector families that compete for the model: all unsupervised, all plain scikit-learn objects.

Plain scikit-learn on purpose: the fitted detector is pickled inside the model, and the serving side
must be able to load it without importing ``training`` (serving never imports training).

* ``iforest``      Isolation Forest (default). Fast to fit and score, indifferent to feature scale,
                   copes with NaN natively.
* ``lof``          Local Outlier Factor in novelty mode. Scores by local density against the fitted
                   rows, so it is O(fitted rows) per scored row: the fitted sample is capped (``max_fit``).
* ``gaussian``     Gaussian density of the (robust-scaled) normal cloud (``GaussianMixture``): one
                   full-covariance component is the Mahalanobis-distance baseline, one diagonal
                   component a summed z-score baseline; more components allow several operating
                   points. (A robust MCD ``EllipticEnvelope`` was tried first: ~60 s per fit on 77
                   features, too slow to tune.)

Every detector exposes ``score_samples`` with *higher = more normal* (the scikit-learn convention and
the contract of ``petrostream.model.AnomalyModel``). Features are median-imputed and robust-scaled
(statistics of the fitted rows only; global, never per instance) before the detector.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

FAMILIES: tuple[str, ...] = ("iforest", "lof", "gaussian")
DEFAULT_FAMILY = "iforest"

DEFAULTS: dict[str, dict[str, Any]] = {
    "iforest": {"n_estimators": 200, "max_samples": 512, "max_features": 1.0},
    "lof": {"n_neighbors": 35, "max_fit": 8000},
    "gaussian": {"n_components": 1, "covariance_type": "full", "reg_covar": 1e-3, "max_fit": 20000},
}


def parse_families(text: str | None) -> list[str]:
    from petrostream.errors import UserError

    if not text:
        return [DEFAULT_FAMILY]
    fams = [f.strip().lower() for f in text.split(",") if f.strip()]
    bad = [f for f in fams if f not in FAMILIES]
    if bad:
        raise UserError(f"unknown detector family {', '.join(bad)} (choose from {', '.join(FAMILIES)})")
    return list(dict.fromkeys(fams))


def suggest(trial, family: str, profile: str = "quick") -> dict[str, Any]:
    """The Optuna search space of one family (parameter names are prefixed by the family)."""
    if family == "iforest":
        return {
            "n_estimators": trial.suggest_int("iforest.n_estimators", 50, 300 if profile == "quick" else 500, step=50),
            "max_samples": trial.suggest_categorical("iforest.max_samples", [256, 512, 1024, 2048, 4096]),
            "max_features": trial.suggest_float("iforest.max_features", 0.3, 1.0),
        }
    if family == "lof":
        return {
            "n_neighbors": trial.suggest_int("lof.n_neighbors", 10, 80, log=True),
            "max_fit": trial.suggest_categorical("lof.max_fit", [3000, 6000] if profile == "quick" else [5000, 10000]),
        }
    if family == "gaussian":
        return {
            "n_components": trial.suggest_int("gaussian.n_components", 1, 4),
            "covariance_type": trial.suggest_categorical("gaussian.covariance_type", ["full", "diag"]),
            "reg_covar": trial.suggest_float("gaussian.reg_covar", 1e-4, 1e-1, log=True),
            "max_fit": 20000,
        }
    raise ValueError(family)


def build(family: str, params: dict[str, Any], seed: int = 0):
    """An unfitted scikit-learn estimator for a family and its parameters."""
    if family == "iforest":
        from sklearn.ensemble import IsolationForest

        return IsolationForest(
            n_estimators=int(params["n_estimators"]),
            max_samples=int(params["max_samples"]),
            max_features=float(params["max_features"]),
            contamination="auto",
            random_state=seed,
            n_jobs=1,
        )
    if family == "lof":
        from sklearn.neighbors import LocalOutlierFactor

        return LocalOutlierFactor(n_neighbors=int(params["n_neighbors"]), novelty=True, n_jobs=1)
    if family == "gaussian":
        from sklearn.mixture import GaussianMixture

        return GaussianMixture(n_components=int(params["n_components"]), covariance_type=str(params["covariance_type"]),
                               reg_covar=float(params["reg_covar"]), random_state=seed)
    raise ValueError(f"unknown detector family {family!r}")


def build_scaler():
    """Median imputation + robust scaling, fitted on the rows the detector is fitted on (global statistics)."""
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import RobustScaler

    return Pipeline(
        [
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
            ("scale", RobustScaler(quantile_range=(5.0, 95.0))),
        ]
    )


@dataclass
class Fitted:
    family: str
    params: dict[str, Any]
    scaler: Any
    detector: Any
    n_fit: int
    fit_seconds: float

    def score(self, X) -> np.ndarray:
        """Normality score (higher = more normal), for evaluation inside training."""
        Z = self.scaler.transform(np.asarray(X, dtype=np.float32))  # exactly what AnomalyModel.score_features does
        return self.detector.score_samples(Z)


def fit(family: str, params: dict[str, Any], X, seed: int = 0) -> Fitted:
    """Fit scaler + detector on the rows ``X`` (already chosen: normal rows, or all rows)."""
    X = np.asarray(X, dtype=np.float32)  # the model scores float32 features
    cap = params.get("max_fit")
    if cap and len(X) > int(cap):
        rng = np.random.default_rng(seed)
        X = X[np.sort(rng.choice(len(X), size=int(cap), replace=False))]
    t0 = time.perf_counter()
    scaler = build_scaler().fit(X)
    Z = scaler.transform(X)
    detector = build(family, params, seed)
    if family == "iforest":
        detector.set_params(max_samples=min(int(params["max_samples"]), len(Z)))
    if family == "lof":
        detector.set_params(n_neighbors=min(int(params["n_neighbors"]), max(1, len(Z) - 1)))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter of GaussianMixture on degenerate features
        detector.fit(Z)
    took = time.perf_counter() - t0
    log.debug("fitted", extra={"family": family, "rows": len(Z), "seconds": round(took, 2)})
    return Fitted(family, dict(params), scaler, detector, len(Z), took)
