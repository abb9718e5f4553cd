"""MLflow adapter: the ``AnomalyModel`` as an MLflow pyfunc model.

Contract other parts (and external checks) rely on::

    mlflow.pyfunc.load_model("models:/petrostream-anomaly@champion").predict(df)

with ``df`` = raw 3W rows (``instance_id``, ``timestamp``, any subset of the variables, NaN allowed)
returns a DataFrame with ``anomaly_score`` (float64) and ``is_anomaly`` (int 0/1), aligned row for row.

The model is serialised deliberately, not with MLflow's sklearn flavour (MLflow 3's default skops format
rejects sklearn trees): the artifacts hold ``AnomalyModel.save`` output (``model.json`` + joblib files).
The ``petrostream`` package itself must be installed where the model is loaded (no code is shipped),
so the loaded model always runs the installed feature code.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel  # by name: ``mlflow.pyfunc`` is a lazy attribute mypy cannot use as a base

from petrostream import __version__, schema
from petrostream.model import ALARM_COL, SCORE_COL, AnomalyModel

log = logging.getLogger(__name__)

ARTIFACT_KEY = "anomaly_model"
EXAMPLE_ROWS = 10
_TYPICAL = {"pressure": 1.0e7, "temperature": 80.0, "flow": 0.0, "opening": 50.0, "valve": 1.0}


class AnomalyPyfunc(PythonModel):
    """Holds nothing when pickled; ``load_context`` loads the ``AnomalyModel`` from the artifacts."""

    def __init__(self) -> None:
        self.model: AnomalyModel | None = None

    def load_context(self, context) -> None:
        self.model = AnomalyModel.load(context.artifacts[ARTIFACT_KEY])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        df = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        assert self.model is not None  # MLflow calls load_context before predict
        return self.model.predict(df)


def signature(model: AnomalyModel):
    """Input: ``instance_id``, ``timestamp`` and the model's variables, all optional; output: score and alarm.

    Inputs are typed "any" on purpose: MLflow's schema enforcement would otherwise refuse integer ids,
    tz-aware timestamps and integer-valued sensor columns (it will not cast int64 to double). The model
    coerces every variable to float itself; the signature still names the columns it reads.
    """
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema, TensorSpec
    from mlflow.types.schema import AnyType

    names = ["instance_id", schema.TIMESTAMP, *model.feature_config.variables]
    inputs: list[ColSpec | TensorSpec] = [ColSpec(AnyType(), n, required=False) for n in names]
    outputs: list[ColSpec | TensorSpec] = [ColSpec("double", SCORE_COL), ColSpec("integer", ALARM_COL)]
    return ModelSignature(inputs=Schema(inputs), outputs=Schema(outputs))


def example_input(model: AnomalyModel, rows: int = EXAMPLE_ROWS) -> pd.DataFrame:
    """A small format example (typical constant values, one instance, 1 Hz); not real data."""
    ts = pd.date_range("2020-01-01", periods=rows, freq="1s")
    df = pd.DataFrame({"instance_id": "example", schema.TIMESTAMP: ts})
    for v in model.feature_config.variables:
        df[v] = float(_TYPICAL.get(schema.VARIABLE_BY_NAME[v].kind, 0.0))
    return df


def _requirements() -> list[str]:
    import cloudpickle
    import joblib
    import sklearn

    return [
        f"mlflow=={mlflow.__version__}",
        f"scikit-learn=={sklearn.__version__}",
        f"numpy=={np.__version__}",
        f"pandas=={pd.__version__}",
        f"joblib=={joblib.__version__}",
        f"cloudpickle=={cloudpickle.__version__}",
    ]


def _example(model: AnomalyModel, input_example_rows: pd.DataFrame | int | None) -> pd.DataFrame | None:
    if isinstance(input_example_rows, pd.DataFrame):
        example = input_example_rows.head(EXAMPLE_ROWS * 2).reset_index(drop=input_example_rows.index.name is None)
        keep = [c for c in example.columns if c in ("instance_id", schema.TIMESTAMP, *model.feature_config.variables)]
        return example[keep]
    if input_example_rows:
        return example_input(model, int(input_example_rows))
    return None


def save_model(model: AnomalyModel, path: str | Path, input_example_rows: pd.DataFrame | int | None = EXAMPLE_ROWS,
               **kwargs: Any) -> Path:
    """Write ``model`` as an MLflow pyfunc model directory at ``path`` (no tracking server involved)."""
    path = Path(path)
    metadata = {"petrostream_version": __version__, **kwargs.pop("metadata", {})}
    with tempfile.TemporaryDirectory(prefix="petrostream-model-") as tmp:
        model_dir = model.save(Path(tmp) / ARTIFACT_KEY)
        mlflow.pyfunc.save_model(
            path=str(path),
            python_model=AnomalyPyfunc(),
            artifacts={ARTIFACT_KEY: str(model_dir)},
            signature=signature(model),
            input_example=_example(model, input_example_rows),
            pip_requirements=kwargs.pop("pip_requirements", _requirements()),
            metadata=metadata,
            **kwargs,
        )
    return path


def log_model(
    model: AnomalyModel,
    name: str = "model",
    registered_model_name: str | None = None,
    input_example_rows: pd.DataFrame | int | None = EXAMPLE_ROWS,
    **kwargs: Any,
):
    """Log ``model`` as a pyfunc (in the active run, or a new one) with signature and input example.

    ``input_example_rows``: a DataFrame of raw rows (its first rows become the example), a number of
    rows of a synthetic format example, or None for no example. Returns MLflow's ``ModelInfo``.
    """
    example = _example(model, input_example_rows)
    metadata = {"petrostream_version": __version__, **kwargs.pop("metadata", {})}
    with tempfile.TemporaryDirectory(prefix="petrostream-model-") as tmp:
        model_dir = model.save(Path(tmp) / ARTIFACT_KEY)
        info = mlflow.pyfunc.log_model(
            name=name,
            python_model=AnomalyPyfunc(),
            artifacts={ARTIFACT_KEY: str(model_dir)},
            signature=signature(model),
            input_example=example,
            registered_model_name=registered_model_name,
            pip_requirements=kwargs.pop("pip_requirements", _requirements()),
            metadata=metadata,
            **kwargs,
        )
    log.info("model logged", extra={"model_uri": info.model_uri, "registered": registered_model_name or ""})
    return info


def load(model_uri: str | Path) -> AnomalyModel:
    """The ``AnomalyModel`` inside a logged pyfunc (``models:/name@alias``, ``runs:/...`` or a local dir)."""
    pyfunc_model = mlflow.pyfunc.load_model(str(model_uri))
    inner = pyfunc_model.unwrap_python_model()
    if not isinstance(inner, AnomalyPyfunc) or inner.model is None:
        from petrostream.model import ModelError

        raise ModelError(f"{model_uri}: not a PetroStream anomaly model ({type(inner).__name__})")
    return inner.model


def download(model_uri: str, dest: str | Path) -> Path:
    """Download a logged model's files (the MLflow model directory) to ``dest``; returns the directory."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    return Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=str(dest)))
