# ruff: noqa: F811 - pytest fixtures are imported from test_inference_support
"""The HTTP API through FastAPI's TestClient, with the real model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from test_inference_support import loaded_model, model_dirs, slices  # noqa: F401 - fixtures

from inference.api import create_app
from inference.metrics import Metrics
from inference.model_loader import LoadedModel, ModelHolder


@pytest.fixture
def holder(loaded_model):
    h = ModelHolder(poll_s=3600, metrics=Metrics(), use_mlflow=False)
    manifest = {"name": "petrostream-anomaly", "version": "7", "run_id": "abc", "metrics": {"f1": 0.81},
                "bucket": "models", "prefix": "petrostream-anomaly/v7/", "exported_at": "2026-11-26T12:00:00+00:00"}
    h.set(LoadedModel(loaded_model, "petrostream-anomaly", "7", "s3-manifest", manifest=manifest))
    return h


def _client(holder, status=None, **kw) -> tuple[TestClient, Metrics]:
    metrics = holder.metrics
    return TestClient(create_app(holder, status, metrics, **kw)), metrics


def _rows(threew_dir, n=400):
    info, df = slices(threew_dir, rows=n, instances=("2/WELL-00009_20170313160804",))[0]
    out = []
    for ts, row in df.drop(columns=["class"]).iterrows():
        r = {"instance_id": info.instance_id, "timestamp": ts.isoformat()}
        r.update({k: (None if np.isnan(v) else float(v)) for k, v in row.items()})
        out.append(r)
    return df, out


def test_health_ready_model(holder):
    running = {"enabled": True, "running": True, "status": "running", "leases": ["shardId-0"], "lag_ms": 1200.0}
    client, _ = _client(holder, lambda: running)
    assert client.get("/health").json()["status"] == "ok"
    r = client.get("/ready")
    assert r.status_code == 200 and r.json()["ready"] and r.json()["consumer"]["lag_ms"] == 1200.0
    m = client.get("/model").json()
    assert m["name"] == "petrostream-anomaly" and m["version"] == "7" and m["alias"] == "champion"
    assert m["metrics"] == {"f1": 0.81} and m["threshold"] == holder.current().model.threshold

    stopped = {**running, "running": False, "status": "stopping"}
    client, _ = _client(holder, lambda: stopped)
    r = client.get("/ready")
    assert r.status_code == 503 and "consumer not running" in r.json()["reasons"][0]


def test_not_ready_without_model():
    client = TestClient(create_app(ModelHolder(poll_s=3600, metrics=Metrics(), use_mlflow=False), None, Metrics()))
    assert client.get("/health").status_code == 200
    r = client.get("/ready")
    assert r.status_code == 503 and r.json()["reasons"] == ["no model loaded"]
    assert client.get("/model").status_code == 503
    r = client.post("/predict", json={"rows": [{"instance_id": "a", "timestamp": "2020-01-01T00:00:00"}]})
    assert r.status_code == 503


def test_predict_matches_the_model_row_for_row(holder, threew_dir):
    client, metrics = _client(holder)
    df, rows = _rows(threew_dir)
    shuffled = rows[::-1]  # any row order: scored per instance in time order, answered in request order
    r = client.post("/predict", json={"rows": shuffled})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model_version"] == "7" and body["n"] == len(rows)
    expected = holder.current().model.predict(df.reset_index().assign(instance_id=rows[0]["instance_id"]))
    got = np.array([x["anomaly_score"] for x in body["rows"]])[::-1]
    np.testing.assert_allclose(got, expected["anomaly_score"].to_numpy(), rtol=1e-9)
    assert body["anomalies"] == int(expected["is_anomaly"].sum())
    assert [x["timestamp"] for x in body["rows"]] == [x["timestamp"] for x in shuffled]
    assert metrics.predict_rows.total() == len(rows)


@pytest.mark.parametrize(
    "payload, status, needle",
    [
        ({"rows": [{"instance_id": "a", "timestamp": "2020-01-01T00:00:00", "P-PDG": "high"}]}, 422, "rows.0.P-PDG"),
        ({"rows": [{"instance_id": "a", "timestamp": "2020-01-01T00:00:00", "FOO": 1.0}]}, 422, "rows.0.FOO"),
        ({"rows": [{"instance_id": "a", "P-PDG": 1.0}]}, 422, "rows.0.timestamp"),
        ({"rows": [{"instance_id": "a", "timestamp": "yesterday"}]}, 422, "rows.0.timestamp"),
        ({"rows": []}, 422, "rows"),
        ({"data": []}, 422, "rows"),
        ({"rows": [{"instance_id": "a", "timestamp": "2020-01-01T00:00:00"}] * 2}, 422, "duplicate"),
    ],
)
def test_bad_payloads_get_4xx_with_a_message(holder, payload, status, needle):
    client, metrics = _client(holder)
    r = client.post("/predict", json=payload)
    assert r.status_code == status, r.text
    assert needle in r.json()["error"]
    assert metrics.predict_requests.value(status=str(status)) == 1


def test_not_json_and_limits(holder):
    client, _ = _client(holder, max_rows=5, max_bytes=2000)
    r = client.post("/predict", content=b"{nope", headers={"content-type": "application/json"})
    assert r.status_code == 422 and "JSON" in r.json()["error"]
    rows = [{"instance_id": "a", "timestamp": f"2020-01-01T00:00:0{i}"} for i in range(6)]
    r = client.post("/predict", json={"rows": rows})
    assert r.status_code == 422 and "at most 5" in r.json()["error"]
    big = json.dumps({"rows": [{"instance_id": "a" * 200, "timestamp": "2020-01-01T00:00:00"}] * 20})
    r = client.post("/predict", content=big.encode(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "2000 bytes" in r.json()["error"]

    def chunks():  # no content-length: counted while streaming
        yield big[:1000].encode()
        yield big[1000:].encode()

    r = client.post("/predict", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_metrics_and_openapi(holder, threew_dir):
    client, metrics = _client(holder)
    _, rows = _rows(threew_dir, n=50)
    client.post("/predict", json={"rows": rows})
    metrics.rows_scored.inc(10, source="REAL")
    metrics.millis_behind.set(250, consumer="serve", shard="shardId-000000000001")
    text = client.get("/metrics").text
    assert client.get("/metrics").headers["content-type"].startswith("text/plain")
    assert 'petrostream_model_info{name="petrostream-anomaly",version="7"} 1' in text
    assert 'petrostream_rows_scored_total{source="REAL"} 10' in text
    assert 'petrostream_millis_behind_latest{consumer="serve",shard="shardId-000000000001"} 250' in text
    assert 'petrostream_predict_requests_total{status="200"} 1' in text
    assert "petrostream_batch_latency_seconds_bucket{le=\"+Inf\"} 1" in text
    assert "# TYPE petrostream_batch_latency_seconds histogram" in text
    spec = client.get("/openapi.json").json()
    assert {"/health", "/ready", "/model", "/predict", "/metrics"} <= set(spec["paths"])
    assert "P-PDG" in json.dumps(spec["components"]["schemas"])
