"""HTTP API of the inference service (FastAPI, served by uvicorn in the same process as the consumer).

``GET /health`` liveness, ``GET /ready`` readiness (model loaded and consumer running; lag included),
``GET /model`` the champion in use, ``POST /predict`` score raw rows, ``GET /metrics`` Prometheus text.
OpenAPI at ``/openapi.json``, docs at ``/docs``.
"""


import json
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field, create_model

from inference.metrics import Metrics, default_metrics
from inference.model_loader import ModelHolder
from petrostream.schema import VARIABLE_NAMES

log = logging.getLogger(__name__)

MAX_ROWS = 10_000
MAX_BYTES = 8 * 1024 * 1024


class BodyLimit:
    """ASGI middleware: refuse request bodies over ``max_bytes`` with 413 (declared or streamed)."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def _refuse(self, send) -> None:
        body = json.dumps({"error": f"request body larger than {self.max_bytes} bytes"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await self._refuse(send)
        if declared is not None:
            return await self.app(scope, receive, send)
        # no declared length (chunked): read up to the limit first, then replay the body to the app
        messages, seen = [], 0
        while True:
            message = await receive()
            messages.append(message)
            if message.get("type") != "http.request":
                break
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                return await self._refuse(send)
            if not message.get("more_body", False):
                break

        async def replay():
            return messages.pop(0) if messages else await receive()

        return await self.app(scope, replay, send)


def _row_model(max_rows: int) -> type[BaseModel]:
    fields: dict[str, Any] = {
        "instance_id": (str, Field("request", min_length=1, max_length=200, description="Series key (one well run)")),
        "timestamp": (datetime, Field(..., description="ISO 8601 time or epoch seconds; 1 Hz rows expected")),
    }
    for v in VARIABLE_NAMES:
        fields[v.replace("-", "_")] = (float | None, Field(None, alias=v))
    Row = create_model("Row", __config__=ConfigDict(extra="forbid", populate_by_name=False), **fields)
    Body = create_model(
        "PredictRequest",
        __config__=ConfigDict(extra="forbid"),
        rows=(list[Row], Field(..., min_length=1, max_length=max_rows,
                               description=f"raw rows (at most {max_rows}); variables by their 3W names")),
    )
    return Body


class PredictRow(BaseModel):
    instance_id: str
    timestamp: datetime
    anomaly_score: float
    is_anomaly: int


class PredictResponse(BaseModel):
    model_name: str
    model_version: str
    threshold: float
    n: int
    anomalies: int
    rows: list[PredictRow]


def _first_errors(errors: Sequence[Any], k: int = 3) -> str:
    parts = []
    for e in errors[:k]:
        loc = ".".join(str(x) for x in e.get("loc", ()) if x != "body")
        parts.append(f"{loc or 'body'}: {e.get('msg', 'invalid')}")
    more = f" (+{len(errors) - k} more)" if len(errors) > k else ""
    return "; ".join(parts) + more


def create_app(
    holder: ModelHolder,
    status: Callable[[], dict] | None = None,
    metrics: Metrics | None = None,
    max_rows: int = MAX_ROWS,
    max_bytes: int = MAX_BYTES,
) -> FastAPI:
    """``status()`` reports the consumer: {"running": bool, "leases": [...], "lag_ms": float, ...}."""
    metrics = metrics or default_metrics()
    Body = _row_model(max_rows)
    app = FastAPI(
        title="PetroStream inference",
        version="1",
        description="Anomaly scores for offshore-well sensor rows (Petrobras 3W). The same model scores the "
        "Kinesis stream in this process.",
    )
    app.add_middleware(BodyLimit, max_bytes=max_bytes)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        errors = exc.errors()
        metrics.predict_requests.inc(status="422")
        clean = [{"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")} for e in errors[:20]]
        return JSONResponse(status_code=422,
                            content={"error": "invalid request: " + _first_errors(errors), "detail": clean})

    @app.get("/health", summary="Liveness: the process answers")
    def health() -> dict:
        return {"status": "ok", "time": datetime.now(UTC).isoformat()}

    @app.get("/ready", summary="Readiness: model loaded and stream consumer running")
    def ready():
        loaded = holder.current()
        consumer = status() if status else {"running": True, "enabled": False}
        reasons = []
        if loaded is None:
            reasons.append("no model loaded" + (f" ({holder.last_error})" if holder.last_error else ""))
        if consumer.get("enabled", True) and not consumer.get("running"):
            reasons.append(f"stream consumer not running ({consumer.get('status', 'unknown')})")
        body = {
            "ready": not reasons,
            "reasons": reasons,
            "model_version": loaded.version if loaded else None,
            "consumer": consumer,
        }
        return JSONResponse(status_code=200 if not reasons else 503, content=body)

    @app.get("/model", summary="The model in use (from the champion manifest)")
    def model():
        loaded = holder.current()
        if loaded is None:
            return JSONResponse(status_code=503, content={"error": "no model loaded yet",
                                                          "last_error": holder.last_error})
        return loaded.describe()

    @app.post("/predict", response_model=PredictResponse, summary="Score raw rows (stateless, per request)",
              responses={413: {"description": "body too large"}, 422: {"description": "invalid rows"},
                         503: {"description": "no model loaded"}})
    def predict(body: Body):  # type: ignore[valid-type]
        loaded = holder.current()
        if loaded is None:
            metrics.predict_requests.inc(status="503")
            return JSONResponse(status_code=503, content={"error": "no model loaded yet"})
        rows = [r.model_dump(by_alias=True) for r in body.rows]  # type: ignore[attr-defined]  # Body is built by create_model
        df = pd.DataFrame(rows)
        ts = pd.to_datetime(df["timestamp"], utc=True).dt.tz_localize(None)
        df["timestamp"] = ts
        dup = df.duplicated(["instance_id", "timestamp"])
        if dup.any():
            i = int(dup.to_numpy().argmax())
            metrics.predict_requests.inc(status="422")
            return JSONResponse(status_code=422, content={
                "error": f"invalid request: rows.{i}: duplicate (instance_id, timestamp) "
                         f"({df['instance_id'].iloc[i]}, {df['timestamp'].iloc[i].isoformat()})"})
        t0 = time.perf_counter()
        out = loaded.model.predict(df)
        metrics.batch_latency.observe(time.perf_counter() - t0)
        metrics.predict_requests.inc(status="200")
        metrics.predict_rows.inc(len(df))
        scores = out["anomaly_score"].to_numpy()
        alarms = out["is_anomaly"].to_numpy()
        return {
            "model_name": loaded.name,
            "model_version": loaded.version,
            "threshold": float(loaded.model.threshold),
            "n": len(df),
            "anomalies": int(alarms.sum()),
            "rows": [
                {"instance_id": i, "timestamp": t.isoformat(), "anomaly_score": float(s), "is_anomaly": int(a)}
                for i, t, s, a in zip(df["instance_id"], df["timestamp"], scores, alarms, strict=True)
            ],
        }

    @app.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics (text format 0.0.4)")
    def prom():
        if status:
            try:
                status()  # refreshes lag gauges
            except Exception:  # metrics must render even when the consumer is unhappy
                log.debug("status failed while rendering metrics", exc_info=True)
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    return app
