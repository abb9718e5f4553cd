"""Core: schema and labels, instance paths, loader edge cases, wire format, lake writes, emulator."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import numpy as np
import pandas as pd
import pytest

from petrostream import schema
from petrostream.dataset import DataError, discover, parse_instance_path, read_instance
from petrostream.lake import SCORED, LakeStore, read_table, write_partitioned
from petrostream.wire import decode_batch, encode


def test_schema_facts():
    assert len(schema.VARIABLES) == 27
    assert set(schema.V1_VARIABLES) <= set(schema.VARIABLE_NAMES)
    assert len(schema.CATEGORICAL_VARIABLES) == 9 and all(v.startswith("ESTADO-") for v in schema.CATEGORICAL_VARIABLES)
    assert schema.TRANSIENT_LABELS == (101, 102, 105, 106, 107, 108, 109)
    assert schema.base_class(102) == 2 and schema.base_class(4) == 4
    assert schema.event_name(106) == "Quick Restriction in PCK (transient)"
    labels = pd.Series([0, 4, 102, None], dtype="Int64")
    assert schema.event_classes(labels).tolist()[:3] == [0, 4, 2]
    assert schema.is_event_label(labels).tolist()[:3] == [False, True, True]


@pytest.mark.parametrize(
    "path, cls, source, well",
    [
        ("4/WELL-00001_20170316120203.parquet", 4, "REAL", "WELL-00001"),
        ("2/SIMULATED_00001.parquet", 2, "SIMULATED", "2_SIMULATED_00001"),
        ("1/DRAWN_00003.parquet", 1, "DRAWN", "1_DRAWN_00003"),
    ],
)
def test_instance_paths(path, cls, source, well):
    info = parse_instance_path(path)
    assert (info.event_class, info.source, info.well_id) == (cls, source, well)
    assert "/" not in info.instance_id


def test_bad_paths_name_the_file():
    with pytest.raises(DataError, match="notaclass"):
        parse_instance_path("notaclass/WELL-00001_20170316120203.parquet")
    with pytest.raises(DataError, match="file name"):
        parse_instance_path("4/whatever.parquet")


def test_loader_on_real_sample(threew_dir):
    infos = discover(threew_dir)
    assert len(infos) >= 300
    df = read_instance(infos[0])
    assert df.index.name == "timestamp" and df.index.is_monotonic_increasing
    assert set(df.columns) <= set(schema.VARIABLE_NAMES) | {"class"}
    assert str(df["class"].dtype) == "Int64"
    assert (df.index.to_series().diff().dropna() == pd.Timedelta(seconds=1)).all()


@pytest.mark.parametrize(
    "content, problem",
    [(b"", "not a readable parquet"), (b"a,b\n1,2\n", "not a readable"), (b"PAR1xxxx", "not a readable")],
)
def test_loader_bad_files(tmp_path, content, problem):
    bad = tmp_path / "4" / "WELL-00001_20170316120203.parquet"
    bad.parent.mkdir()
    bad.write_bytes(content)
    with pytest.raises(DataError, match=problem) as err:
        read_instance(bad)
    assert str(bad) in str(err.value) and "\n" not in str(err.value)


def test_loader_foreign_columns(tmp_path):
    bad = tmp_path / "WELL-00001_20170316120203.parquet"
    pd.DataFrame({"x": [1.0]}, index=pd.DatetimeIndex(["2020-01-01"], name="timestamp")).to_parquet(bad)
    with pytest.raises(DataError, match="none of the 3W variables"):
        read_instance(bad)


def test_empty_directory(tmp_path):
    with pytest.raises(DataError, match="no 3W instances"):
        discover(tmp_path)


def test_wire_roundtrip_and_rejections():
    idx = pd.date_range("2020-01-01", periods=5, freq="s", name="timestamp")
    frame = pd.DataFrame({"P-PDG": [1.0, np.nan, 3.0, 4.0, 5.0], "class": pd.array([0, 0, 4, None, 4], "Int64")}, idx)
    good = encode(instance_id="4_x", well_id="W", source="REAL", event_class=4, frame=frame, version=1)
    batch = decode_batch([good, b"{not json", good.replace(b'"v":1', b'"v":9')])
    assert len(batch.rows) == 5
    assert batch.rows["P-PDG"].isna().sum() == 1
    assert batch.rows["label"].isna().sum() == 1
    assert [i for i, _ in batch.rejected] == [1, 2]
    assert "schema version" in batch.rejected[1][1]


def test_lake_write_is_idempotent(tmp_path):
    store = LakeStore(lake_dir=tmp_path)
    df = pd.DataFrame(
        {
            "instance_id": ["a", "a", "b"],
            "well_id": ["W1", "W1", "W2"],
            "source": "REAL",
            "event_class": 4,
            "ts": pd.to_datetime(["2020-01-01 23:59:59", "2020-01-02 00:00:00", "2020-01-01 10:00:00"]),
            "anomaly_score": [0.1, 0.9, 0.5],
            "is_anomaly": [0, 1, 0],
            "model_version": "1",
        }
    )
    keys = write_partitioned(SCORED, df, "shard-0001-10-20", store)
    write_partitioned(SCORED, df, "shard-0001-10-20", store)  # redelivery: same keys, no duplicates
    assert len(keys) == 2  # one object per day, both wells in it
    back = read_table(SCORED, store)
    assert len(back) == 3
    assert sorted(back["dt"].unique()) == ["2020-01-01", "2020-01-02"]
    assert sorted(back["well"]) == ["W1", "W1", "W2"]
    assert back["p_pdg"].isna().all()


def test_emulator_resources_visible_with_plain_boto3(emulator):
    import boto3

    from petrostream.settings import Settings

    s = Settings()
    s3 = boto3.client("s3", endpoint_url=emulator.endpoint, region_name="us-east-1")
    names = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert {s.raw_bucket, s.curated_bucket, s.models_bucket, s.athena_results_bucket} <= names
    kinesis = boto3.client("kinesis", endpoint_url=emulator.endpoint, region_name="us-east-1")
    assert s.stream_name in kinesis.list_streams()["StreamNames"]
    glue = boto3.client("glue", endpoint_url=emulator.endpoint, region_name="us-east-1")
    cols = glue.get_table(DatabaseName=s.glue_database, Name=s.scored_table)["Table"]["StorageDescriptor"]["Columns"]
    assert {"anomaly_score", "model_version", "p_pdg"} <= {c["Name"] for c in cols}


def test_emulator_keeps_client_connections_alive(emulator, monkeypatch):
    """Like AWS, the emulator keeps HTTP connections open: a client's calls (bodies up and down, HEAD, an empty
    204 reply, errors) share one TCP connection instead of paying a new one per call."""
    import socket

    import boto3
    from botocore.config import Config

    s3 = boto3.client("s3", endpoint_url=emulator.endpoint, region_name="us-east-1",
                      config=Config(max_pool_connections=1, retries={"max_attempts": 1}))
    bucket = f"keepalive-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    connects: list[object] = []
    real_connect = socket.socket.connect

    def counting_connect(self, address):
        connects.append(address)
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", counting_connect)
    body = os.urandom(300_000)
    for i in range(5):
        reply = s3.put_object(Bucket=bucket, Key=f"k{i}", Body=body)
        assert reply["ResponseMetadata"]["HTTPHeaders"].get("connection") != "close"
        assert s3.get_object(Bucket=bucket, Key=f"k{i}")["Body"].read() == body
        assert s3.head_object(Bucket=bucket, Key=f"k{i}")["ContentLength"] == len(body)
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket=bucket, Key="absent")
    assert s3.delete_object(Bucket=bucket, Key="k0")["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["k1", "k2", "k3", "k4"]
    assert len(connects) <= 1, f"{len(connects)} TCP connections for 19 calls"


def test_emulator_server_falls_back_to_moto_server_without_gunicorn(tmp_path):
    """Where gunicorn cannot be installed (Windows), the emulator still runs: moto's own server."""
    import urllib.request

    from petrostream.local import free_port

    port = free_port()
    code = ("import sys; sys.modules['gunicorn'] = None; from petrostream.emulator_server import main; "
            f"main(['-H', '127.0.0.1', '-p', '{port}'])")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1) as reply:
                    assert reply.status == 200
                    assert reply.headers["Connection"] == "close"  # werkzeug's server, not gunicorn
                    break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail("the fallback server never answered")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_local_cli_up_status_down(tmp_path):
    from petrostream.local import free_port

    port = str(free_port())
    env_cmd = [sys.executable, "-m", "petrostream.cli"]
    import os

    env = {**os.environ, "PETROSTREAM_STATE_DIR": str(tmp_path), "PETROSTREAM_LOCAL_PORT": port}
    env.pop("AWS_ENDPOINT_URL", None)
    up = subprocess.run([*env_cmd, "local", "up"], env=env, capture_output=True, text=True, timeout=120)
    assert up.returncode == 0, up.stderr
    assert f"127.0.0.1:{port}" in up.stdout
    again = subprocess.run([*env_cmd, "local", "up"], env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr  # idempotent
    st = subprocess.run([*env_cmd, "local", "status"], env=env, capture_output=True, text=True, timeout=60)
    assert "petrostream-ingest (2 shards, ACTIVE)" in st.stdout
    down = subprocess.run([*env_cmd, "local", "down"], env=env, capture_output=True, text=True, timeout=60)
    assert "stopped" in down.stdout
    st = subprocess.run([*env_cmd, "local", "status"], env=env, capture_output=True, text=True, timeout=60)
    assert st.returncode == 1


def test_bootstrap_refuses_remote_endpoint():
    from petrostream.local import EmulatorError, check_target

    with pytest.raises(EmulatorError, match="--i-know-this-is-aws"):
        check_target("https://kinesis.us-east-1.amazonaws.com", False)
    check_target("http://127.0.0.1:4566", False)


@pytest.mark.parametrize(
    "field, value, reason",
    [
        ("label", [[1], 0, 0, 0, 0], "label [1] is not a 3W label"),
        ("label", 5, "label must be a list"),
        ("label", [True, 0, 0, 0, 0], "label True is not a 3W label"),
        ("event_class", "abc", "event_class 'abc'"),
        ("event_class", 42, "event_class 42"),
        ("sent_at", "abc", "sent_at 'abc'"),
        ("ts", [10**15, 10**15 + 1, 10**15 + 2, 10**15 + 3, 10**15 + 4], "ts out of range"),
        ("values", {"P-PDG": [1e999, 1.0, 1.0, 1.0, 1.0]}, "non-finite"),
        ("values", {"P-PDG": [10**400, 1.0, 1.0, 1.0, 1.0]}, "too large"),
    ],
)
def test_wire_poison_fields_are_rejected_not_raised(field, value, reason):
    """A valid-JSON record with a bad field is quarantined with a reason; it never breaks the batch."""
    import json

    idx = pd.date_range("2020-01-01", periods=5, freq="s", name="timestamp")
    frame = pd.DataFrame({"P-PDG": [1.0, 2.0, 3.0, 4.0, 5.0]}, idx)
    good = encode(instance_id="4_x", well_id="W", source="REAL", event_class=4, frame=frame, version=1)
    doc = json.loads(good)
    doc[field] = value
    batch = decode_batch([good, json.dumps(doc).encode(), good])
    assert len(batch.rows) == 10
    assert [i for i, _ in batch.rejected] == [1]
    assert reason in batch.rejected[0][1]
