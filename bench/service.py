"""The real service under a real producer: ``petrostream serve`` and ``petrostream produce`` as subprocesses
against the emulator, a fresh stream and a fresh curated bucket per run.

Measured per run: end-to-end latency from the lake rows (``scored_at - sent_at``, and produced ->
queryable: the moment the object holding the row was first listed by a reader, polled every 0.5 s),
completeness (rows produced vs rows in the lake), the service's memory (VmRSS and the peak VmHWM sampled
from /proc) and CPU seconds (startup excluded: /proc at ready, wait4 rusage at exit).
"""

from __future__ import annotations

import io
import json
import time
import urllib.request
from typing import Any

from bench.common import Child, Context, child_env, cli, cpu_seconds, percentiles, rnd, say

POLL_S = 0.5


def _wait_ready(url: str, child: Child, timeout: float) -> float | None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout and not child.done.is_set():
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return time.monotonic() - t0
        except Exception:
            pass
        time.sleep(0.25)
    return None


class _LakeWatch:
    """Lists the run's scored/ prefix and remembers when each object was first seen (wall clock)."""

    def __init__(self, store, bucket: str):
        self.store, self.bucket = store, bucket
        self.first_seen: dict[str, float] = {}
        self.rows: dict[str, int] = {}

    def poll(self) -> int:
        import pyarrow.parquet as pq

        now = time.time()
        for key in self.store.list(self.bucket, "scored/"):
            if key.endswith(".parquet") and key not in self.first_seen:
                self.first_seen[key] = now
                self.rows[key] = pq.ParquetFile(io.BytesIO(self.store.get(self.bucket, key))).metadata.num_rows
        return sum(self.rows.values())


def serve_run(ctx: Context, kind: str) -> dict[str, Any]:
    """``kind``: "1x" (every picked instance interleaved at real time) or "max" (producer at full speed)."""
    key = f"serve_{kind}"
    if key not in ctx.cache:
        try:
            ctx.cache[key] = _serve_run(ctx, kind)
        except Exception as exc:  # a failed run is reported, the other figures still count
            say("serve", f"{kind} run failed: {type(exc).__name__}: {exc}")
            ctx.cache[key] = {"error": f"{type(exc).__name__}: {str(exc)[:400]}"}
    return ctx.cache[key]


def _serve_run(ctx: Context, kind: str) -> dict[str, Any]:
    from petrostream import lake
    from petrostream.local import free_port
    from petrostream.settings import Settings

    z = ctx.sizes
    ctx.served_model()  # the champion must be exported before the service starts
    stream = ctx.fresh_stream(f"serve-{kind}")
    bucket = ctx.fresh_bucket(f"lake-{kind}")
    store = lake.LakeStore(Settings(curated_bucket=bucket))
    port = free_port()
    env = child_env(PETROSTREAM_CURATED_BUCKET=bucket, PETROSTREAM_STREAM_NAME=stream,
                    PETROSTREAM_MODEL_CACHE=str(ctx.tmp / f"model-cache-{kind}"))
    serve_args = ["serve", "--stream", stream, "--flush-s", f"{z.serve_flush_s:g}", "--poll-s", f"{z.serve_poll_s:g}",
                  "--host", "127.0.0.1", "--port", str(port)]
    say("serve", f"{kind}: starting petrostream serve (flush every {z.serve_flush_s:g} s) ...")
    serve = Child(cli(*serve_args), ctx.tmp / f"serve-{kind}.log", env)
    producer: Child | None = None
    try:
        startup = _wait_ready(f"http://127.0.0.1:{port}/ready", serve, timeout=180)
        if startup is None:
            raise RuntimeError(f"service not ready within 180 s (exit {serve.returncode}): {serve.tail()}")
        idle = serve.memory()
        cpu_ready = cpu_seconds(serve.pid) or 0.0
        t_ready = time.time()
        if kind == "1x":
            infos = ctx.pick(z.serve_1x_instances)
            sources = [str(ctx.data)] if len(infos) == len(ctx.infos) else [str(i.path) for i in infos]
            prod_args = ["produce", *sources, "--stream", stream, "--speed", "1", "--max-open", "100000",
                         "--max-rows-per-instance", str(z.serve_1x_seconds)]
        else:
            infos = ctx.pick(z.serve_max_instances)
            prod_args = ["produce", *[str(i.path) for i in infos], "--stream", stream, "--speed", "max",
                         "--max-open", "64"]
            if z.serve_max_rows:
                prod_args += ["--max-rows-per-instance", str(z.serve_max_rows)]
        prod_args += ["--json-summary", "--no-progress", "--checkpoint", str(ctx.tmp / f"checkpoint-{kind}.json")]
        say("serve", f"{kind}: replaying {len(infos)} instances "
                     f"({'real time' if kind == '1x' else 'max speed'}) ...")
        watch = _LakeWatch(store, bucket)
        t_prod = time.time()
        producer = Child(cli(*prod_args), ctx.tmp / f"produce-{kind}.log", env, sample_s=POLL_S)
        while not producer.wait(POLL_S):
            watch.poll()
        if producer.returncode != 0:
            raise RuntimeError(f"producer exited {producer.returncode}: {producer.tail()}")
        summary = json.loads(producer.stdout().strip().splitlines()[-1])
        produced = int(summary["rows"])
        t_prod_end = time.time()
        deadline = time.monotonic() + max(120.0, produced / 2_000)
        while watch.poll() < produced and time.monotonic() < deadline and not serve.done.is_set():
            time.sleep(POLL_S)
        t_all = time.time()
        drained = watch.poll() >= produced
        loaded = _wait_ready(f"http://127.0.0.1:{port}/ready", serve, timeout=5)  # still healthy?
    finally:
        if producer is not None:
            producer.stop(grace=10)
        serve.stop(grace=120)  # graceful: flush, checkpoint, release leases
    rows = _read_rows(store, bucket, watch.first_seen)
    lat = (rows["scored_at"] - rows["sent_at"]).dt.total_seconds()
    queryable = rows["first_seen"] - rows["sent_at"].astype("int64") / 1e3
    unique = int(rows[["instance_id", "ts"]].drop_duplicates().shape[0]) if len(rows) else 0
    busy_s = (t_all - t_prod) if drained else None
    load_cpu = (serve.cpu_s - cpu_ready) if serve.cpu_s is not None else None
    result = {
        "instances": len(infos),
        "produced_rows": produced,
        "lake_rows": int(len(rows)),
        "lake_unique_rows": unique,
        "complete": bool(drained and unique == produced),
        "producer": {k: summary.get(k) for k in ("rows", "records", "bytes", "elapsed_s", "rows_per_s", "aggregation")},
        "latency_scored_minus_sent_s": percentiles(lat),
        "latency_produced_to_queryable_s": percentiles(queryable),
        "drain_after_producer_end_s": rnd(t_all - t_prod_end) if drained else None,
        "service_rows_per_s_wall": rnd(produced / busy_s, 1) if busy_s else None,
        "service_startup_to_ready_s": rnd(startup, 2),
        "service_cpu_s": rnd(serve.cpu_s, 2),
        "service_cpu_after_ready_s": rnd(load_cpu, 2),
        # whole process (Kinesis reads, leases, API, polling, final flush), startup excluded
        "service_rows_per_cpu_s": rnd(produced / load_cpu, 1) if load_cpu else None,
        "service_avg_cores_after_ready": rnd(load_cpu / (t_all - t_ready), 3) if load_cpu and t_all > t_ready else None,
        "service_memory": {**serve.memory(), "idle_before_load_rss_mib": idle.get("peak_rss_mib")},
        "service_exit_code": serve.returncode,
        "service_healthy_at_end": loaded is not None,
        "flush_s": z.serve_flush_s,
        "poll_s": z.serve_poll_s,
    }
    lq = result["latency_produced_to_queryable_s"]
    state = "complete" if result["complete"] else "INCOMPLETE"
    say("serve", f"{kind}: {produced:,} rows, lake {len(rows):,} ({state}),"
                 f" produced->queryable p50 {lq['p50']} s p95 {lq['p95']} s p99 {lq['p99']} s, "
                 f"service peak RSS {result['service_memory']['peak_rss_mib']} MiB")
    return result


def _read_rows(store, bucket: str, first_seen: dict[str, float]):
    import pandas as pd
    import pyarrow.parquet as pq

    frames = []
    for key in store.list(bucket, "scored/"):
        if not key.endswith(".parquet"):
            continue
        t = pq.read_table(io.BytesIO(store.get(bucket, key)), columns=["instance_id", "ts", "sent_at", "scored_at"])
        df = t.to_pandas()
        df["first_seen"] = first_seen.get(key, time.time())
        frames.append(df)
    if not frames:
        return pd.DataFrame({"instance_id": [], "ts": pd.Series(dtype="datetime64[ms]"),
                             "sent_at": pd.Series(dtype="datetime64[ms]"),
                             "scored_at": pd.Series(dtype="datetime64[ms]"), "first_seen": []})
    df = pd.concat(frames, ignore_index=True)
    for c in ("ts", "sent_at", "scored_at"):
        df[c] = pd.to_datetime(df[c]).astype("datetime64[ms]")
    return df
