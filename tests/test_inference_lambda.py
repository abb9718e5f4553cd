# ruff: noqa: F811 - pytest fixtures are imported from test_inference_support
"""The Lambda handler (Kinesis event-source mapping) on the same scoring core, against the emulator."""

from __future__ import annotations

import base64
import json

import pytest
from test_inference_support import (  # noqa: F401 - fixtures
    assert_exactly_once,
    champion,
    encode_records,
    fresh_lake,
    model_dirs,
    model_name,
    rows_for,
    scored_table,
    slices,
)

from inference import lambda_handler
from petrostream import lake

SHARD = "shardId-000000000007"


def _event(records: list[tuple[str, bytes]], first_seq: int) -> tuple[dict, list[str]]:
    seqs = [str(first_seq + i) for i in range(len(records))]
    return {
        "Records": [
            {
                "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": pk, "sequenceNumber": seq,
                            "data": base64.b64encode(data).decode(), "approximateArrivalTimestamp": 1.7e9},
                "eventSource": "aws:kinesis",
                "eventID": f"{SHARD}:{seq}",
                "eventName": "aws:kinesis:record",
                "eventSourceARN": "arn:aws:kinesis:us-east-1:000000000000:stream/test",
            }
            for (pk, data), seq in zip(records, seqs, strict=True)
        ]
    }, seqs


@pytest.fixture
def container(champion, monkeypatch):
    lambda_handler.reset()
    yield
    lambda_handler.reset()


def _quarantined() -> list[dict]:
    store = lake.LakeStore()
    bucket = store.settings.curated_bucket
    return [json.loads(line) for key in store.list(bucket, "quarantine/")
            for line in store.get(bucket, key).decode().splitlines()]


def test_bad_records_are_reported_and_nothing_is_written_twice(container, threew_dir):
    parts = slices(threew_dir, rows=400, instances=("2/WELL-00009_20170313160804",))
    good = encode_records(parts)  # 10 records
    bad = ("bad", b"\x00 not a record")
    records = good[:4] + [bad] + good[4:]
    event, seqs = _event(records, 100)

    out = lambda_handler.handler(event, None)
    assert out == {"batchItemFailures": [{"itemIdentifier": seqs[4]}]}
    assert len(rows_for(scored_table(), parts)) == 4 * 40  # the prefix before the bad record only

    # Lambda retries from the reported record: it fails again (and ends in the on-failure destination)
    retry, _ = _event(records[4:], 104)
    assert lambda_handler.handler(retry, None) == {"batchItemFailures": [{"itemIdentifier": seqs[4]}]}
    # ... then the mapping moves on past it: the rest lands, nothing twice
    rest, _ = _event(records[5:], 105)
    assert lambda_handler.handler(rest, None) == {"batchItemFailures": []}
    df = scored_table()
    assert_exactly_once(df, parts)
    assert set(rows_for(df, parts)["model_version"]) == {"1"}
    # the model was loaded once for the container
    assert lambda_handler._STATE["metrics"].model_reloads.total() == 0


def test_quarantine_mode_sets_bad_records_aside(container, threew_dir, monkeypatch):
    monkeypatch.setenv("PETROSTREAM_LAMBDA_BAD_RECORDS", "quarantine")
    parts = slices(threew_dir, rows=200, instances=("2/WELL-00010_20171218200131",))
    records = encode_records(parts)
    records.insert(2, ("bad", json.dumps({"v": 1, "instance_id": "i"}).encode()))
    event, seqs = _event(records, 1)
    assert lambda_handler.handler(event, None) == {"batchItemFailures": []}
    assert_exactly_once(scored_table(), parts)
    q = [e for e in _quarantined() if e["consumer"] == "lambda"]
    assert len(q) == 1 and q[0]["sequence_number"] == seqs[2] and q[0]["shard_id"] == SHARD
    assert "missing field" in q[0]["reason"]


def test_lake_failure_reports_the_whole_batch(container, threew_dir, monkeypatch):
    from petrostream.settings import get_settings

    monkeypatch.setenv("PETROSTREAM_CURATED_BUCKET", "no-such-bucket-for-lambda")
    get_settings.cache_clear()
    lambda_handler.reset()
    parts = slices(threew_dir, rows=80, instances=("2/WELL-00003_20180206182917",))
    event, seqs = _event(encode_records(parts), 500)
    assert lambda_handler.handler(event, None) == {"batchItemFailures": [{"itemIdentifier": seqs[0]}]}


def test_empty_event(container):
    assert lambda_handler.handler({"Records": []}, None) == {"batchItemFailures": []}
