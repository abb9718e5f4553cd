"""The embedded local AWS: a moto server on 127.0.0.1 plus an idempotent bootstrap of the same
resources the Terraform declares (buckets, Kinesis stream, DynamoDB lease table, Glue catalog,
Athena workgroup). No account, no Docker. The server is moto's application with HTTP keep-alive, as
AWS endpoints have (``petrostream.emulator_server``).

Known moto behaviour (measured): Kinesis puts slow down as a stream fills (~66 ms per 500-record
batch when empty, ~500 ms after 50k records), no shard throughput limits and never a partial
failure, Firehose does not read from Kinesis, Athena runs no SQL (queries "succeed" empty).
So: fresh streams per test/demo, aggregated records, ``petrostream archive`` instead of Firehose,
DuckDB instead of Athena.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from petrostream.aws import client, is_loopback, use_local_endpoint
from petrostream.errors import UserError
from petrostream.lake import PARTITION_KEYS, TABLES
from petrostream.settings import Settings, get_settings


class EmulatorError(UserError, RuntimeError):
    pass


@dataclass
class Emulator:
    endpoint: str
    pid: int
    state_dir: Path

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "moto.pid"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _alive(endpoint: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=timeout) as r:
            return r.status == 200
    except Exception:
        return False


def _pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def start(settings: Settings | None = None, port: int | None = None, state_dir: Path | None = None) -> Emulator:
    """Start moto server in the background (pid + log under the state dir) and wait until it answers.

    Idempotent: if our pid file points to a live server on that port, it is reused.
    """
    s = settings or get_settings()
    port = port or s.local_port
    state = Path(state_dir or s.state_dir)
    state.mkdir(parents=True, exist_ok=True)
    endpoint = f"http://{s.local_host}:{port}"
    pid_file = state / "moto.pid"
    if pid_file.exists():
        info = json.loads(pid_file.read_text())
        if _pid_running(info["pid"]) and _alive(info["endpoint"]):
            return Emulator(info["endpoint"], info["pid"], state)
        pid_file.unlink()
    if _alive(endpoint):
        raise EmulatorError(f"{endpoint}: something else already answers there; use --port")
    log = open(state / "moto.log", "ab")  # noqa: SIM115 - handed to the child
    env = {**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "true"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "petrostream.emulator_server", "-H", s.local_host, "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=env,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise EmulatorError(f"moto server exited with code {proc.returncode}; see {state / 'moto.log'}")
        if _alive(endpoint, timeout=0.5):
            pid_file.write_text(json.dumps({"pid": proc.pid, "endpoint": endpoint}))
            return Emulator(endpoint, proc.pid, state)
        time.sleep(0.2)
    proc.kill()
    raise EmulatorError(f"moto server did not answer on {endpoint} within 30 s; see {state / 'moto.log'}")


def running(settings: Settings | None = None, state_dir: Path | None = None) -> Emulator | None:
    s = settings or get_settings()
    state = Path(state_dir or s.state_dir)
    pid_file = state / "moto.pid"
    if not pid_file.exists():
        return None
    info = json.loads(pid_file.read_text())
    if _pid_running(info["pid"]) and _alive(info["endpoint"]):
        return Emulator(info["endpoint"], info["pid"], state)
    return None


def stop(settings: Settings | None = None, state_dir: Path | None = None) -> bool:
    """Stop the server this state dir started (and only that one). Returns True if one was stopped."""
    s = settings or get_settings()
    state = Path(state_dir or s.state_dir)
    pid_file = state / "moto.pid"
    if not pid_file.exists():
        return False
    info = json.loads(pid_file.read_text())
    pid_file.unlink()
    if not _pid_running(info["pid"]):
        return False
    try:
        os.killpg(info["pid"], signal.SIGTERM)
    except ProcessLookupError:
        return False
    for _ in range(50):
        if not _pid_running(info["pid"]):
            break
        time.sleep(0.1)
    else:
        os.killpg(info["pid"], signal.SIGKILL)
    return True


# ---------------------------------------------------------------- bootstrap

_GLUE_TYPES = {
    pa.string(): "string",
    pa.int32(): "int",
    pa.int64(): "bigint",
    pa.float64(): "double",
    pa.timestamp("ms"): "timestamp",
}


def glue_columns(schema: pa.Schema) -> list[dict]:
    return [{"Name": f.name, "Type": _GLUE_TYPES[f.type]} for f in schema]


def check_target(endpoint: str | None, i_know_this_is_aws: bool) -> None:
    if not is_loopback(endpoint) and not i_know_this_is_aws:
        raise EmulatorError(
            f"refusing to bootstrap {endpoint or 'real AWS'}: not a loopback endpoint "
            "(pass --i-know-this-is-aws to create resources there)"
        )


def bootstrap(settings: Settings | None = None, shards: int | None = None) -> dict[str, list[str]]:
    """Create (idempotently) every resource the pipeline needs. Returns what now exists."""
    s = settings or get_settings()
    created: dict[str, list[str]] = {"s3": [], "kinesis": [], "dynamodb": [], "glue": [], "athena": []}
    s3 = client("s3", s)
    have = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    for bucket in (s.raw_bucket, s.curated_bucket, s.models_bucket, s.athena_results_bucket):
        if bucket not in have:
            s3.create_bucket(Bucket=bucket)
        created["s3"].append(bucket)
    s3.put_bucket_versioning(Bucket=s.models_bucket, VersioningConfiguration={"Status": "Enabled"})

    ensure_stream(s.stream_name, shards or s.stream_shards, s)
    created["kinesis"].append(s.stream_name)

    ddb = client("dynamodb", s)
    if s.lease_table not in ddb.list_tables()["TableNames"]:
        ddb.create_table(
            TableName=s.lease_table,
            KeySchema=[{"AttributeName": "shard_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "shard_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    created["dynamodb"].append(s.lease_table)

    glue = client("glue", s)
    try:
        glue.create_database(DatabaseInput={"Name": s.glue_database})
    except glue.exceptions.AlreadyExistsException:
        pass
    names = {"raw_readings": s.raw_table, "scored_readings": s.scored_table, "anomaly_events": s.events_table}
    for logical, table in TABLES.items():
        name = names[logical]
        table_input = {
            "Name": name,
            "TableType": "EXTERNAL_TABLE",
            "PartitionKeys": [{"Name": k, "Type": "string"} for k in PARTITION_KEYS],
            "Parameters": {"classification": "parquet", "projection.enabled": "true"},
            "StorageDescriptor": {
                "Columns": glue_columns(table.schema),
                "Location": f"s3://{table.bucket(s)}/{table.prefix}/",
                "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
                "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"},
            },
        }
        try:
            glue.create_table(DatabaseName=s.glue_database, TableInput=table_input)
        except glue.exceptions.AlreadyExistsException:
            glue.update_table(DatabaseName=s.glue_database, TableInput=table_input)
        created["glue"].append(f"{s.glue_database}.{name}")

    athena = client("athena", s)
    groups = {g["Name"] for g in athena.list_work_groups().get("WorkGroups", [])}
    if s.athena_workgroup not in groups:
        athena.create_work_group(
            Name=s.athena_workgroup,
            Configuration={
                "ResultConfiguration": {"OutputLocation": f"s3://{s.athena_results_bucket}/results/"},
                "EnforceWorkGroupConfiguration": True,
                "BytesScannedCutoffPerQuery": s.athena_bytes_scanned_cutoff,
            },
        )
    created["athena"].append(s.athena_workgroup)
    return created


def ensure_stream(name: str, shards: int, settings: Settings | None = None, fresh: bool = False) -> None:
    """Create the stream if absent (or recreate it with ``fresh``) and wait until it is ACTIVE."""
    kinesis = client("kinesis", settings)
    existing = kinesis.list_streams().get("StreamNames", [])
    if name in existing and fresh:
        kinesis.delete_stream(StreamName=name, EnforceConsumerDeletion=True)
        kinesis.get_waiter("stream_not_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.2})
        existing = []
    if name not in existing:
        kinesis.create_stream(StreamName=name, ShardCount=shards)
    kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 100})


def status(settings: Settings | None = None) -> dict[str, list[str]]:
    """What exists at the current endpoint (buckets with object counts, streams, tables...)."""
    s = settings or get_settings()
    out: dict[str, list[str]] = {}
    s3 = client("s3", s)
    out["s3"] = []
    for b in s3.list_buckets().get("Buckets", []):
        n = s3.list_objects_v2(Bucket=b["Name"], MaxKeys=1000).get("KeyCount", 0)
        out["s3"].append(f"{b['Name']} ({n}{'+' if n == 1000 else ''} objects)")
    kinesis = client("kinesis", s)
    out["kinesis"] = []
    for name in kinesis.list_streams().get("StreamNames", []):
        d = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
        out["kinesis"].append(f"{name} ({d['OpenShardCount']} shards, {d['StreamStatus']})")
    out["dynamodb"] = client("dynamodb", s).list_tables()["TableNames"]
    glue = client("glue", s)
    out["glue"] = [
        f"{db['Name']}.{t['Name']}"
        for db in glue.get_databases()["DatabaseList"]
        for t in glue.get_tables(DatabaseName=db["Name"])["TableList"]
    ]
    out["athena"] = [g["Name"] for g in client("athena", s).list_work_groups()["WorkGroups"]]
    return out


def up(settings: Settings | None = None, port: int | None = None, shards: int | None = None) -> Emulator:
    """Start (or reuse) the emulator, point this process at it, and bootstrap resources."""
    emu = start(settings, port)
    use_local_endpoint(emu.endpoint)
    bootstrap(settings, shards)
    return emu
