# ruff: noqa: F811 - pytest fixtures are imported from test_inference_support
"""``petrostream serve`` as real processes: SIGKILL + restart, SIGTERM, two workers sharing shards."""

from __future__ import annotations

import signal

import pytest
from test_inference_support import (  # noqa: F401 - fixtures
    STREAM,
    assert_exactly_once,
    assert_scores_match_batch,
    champion,
    encode_records,
    fresh_lake,
    loaded_model,
    model_dirs,
    model_name,
    put,
    rows_for,
    scored_table,
    serve_cmd,
    slices,
    start,
    stop,
    wait_until,
)

from inference.leases import LeaseTable
from petrostream import lake

FAST = ["--no-api", "--flush-s", "0.3", "--max-rows", "120", "--limit", "3", "--lease-s", "3", "--poll-s", "0.1",
        "--model-poll-s", "1", "--shard-sync-s", "1"]
MORE = (*STREAM, "2/WELL-00011_20140726180015", "2/WELL-00011_20140921200031", "6/WELL-00004_20171031181509",
        "2/WELL-00011_20140929170028")


def _ranges_by_shard() -> dict[str, list[tuple[int, int]]]:
    """Sequence ranges of the scored objects, per shard (names are <shard>-<first>-<last>)."""
    store = lake.LakeStore()
    out: dict[str, set[tuple[int, int]]] = {}
    for key in store.list(store.settings.curated_bucket, "scored/"):
        name = key.rsplit("/", 1)[-1][: -len(".parquet")]
        shard, first, last = name.rsplit("-", 2)
        out.setdefault(shard, set()).add((int(first), int(last)))
    return {k: sorted(v) for k, v in out.items()}


def _assert_disjoint(ranges: dict[str, list[tuple[int, int]]]) -> None:
    for shard, rs in ranges.items():
        for (a1, b1), (a2, b2) in zip(rs, rs[1:], strict=False):
            assert b1 < a2, f"{shard}: objects {a1}-{b1} and {a2}-{b2} overlap (a range was processed twice)"


def test_sigkill_mid_stream_then_restart_loses_and_duplicates_nothing(fresh_stream, champion, threew_dir, tmp_path,
                                                                      loaded_model):
    stream = fresh_stream(2)
    parts = slices(threew_dir, rows=1000)
    records = encode_records(parts)
    half = len(records) // 2
    put(stream, records[:half])
    total = sum(len(df) for _, df in parts)

    first = start(serve_cmd(*FAST, "--workers-id", "victim"), tmp_path / "victim.log")
    try:
        wait_until(lambda: 0 < len(rows_for(scored_table(), parts)), what="first rows in the lake")
        put(stream, records[half:])
        first.send_signal(signal.SIGKILL)  # no flush, no release: leases stay owned by a dead worker
        first.wait(30)
    finally:
        stop(first, signal.SIGKILL)
    landed = len(rows_for(scored_table(), parts))
    assert landed < total, "the kill came too late to test anything"
    owners = {lease.owner for lease in LeaseTable(stream, "observer").list()}
    assert owners == {"victim"}

    second = start(serve_cmd(*FAST, "--workers-id", "survivor", "--exit-when-idle", "2"), tmp_path / "survivor.log")
    assert second.wait(300) == 0, (tmp_path / "survivor.log").read_text()[-3000:]
    assert_exactly_once(scored_table(), parts)
    _assert_disjoint(_ranges_by_shard())
    leases = LeaseTable(stream, "observer").list()
    assert all(lease.owner is None and lease.pending is None for lease in leases)
    # the survivor re-read the records before the checkpoint to warm the windows: same scores as no crash
    assert_scores_match_batch(scored_table(), parts, loaded_model, rtol=1e-6)


def _metric(port: int, name: str) -> float:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name) and not line.startswith("#"))


def _get(port: int, path: str) -> tuple[int, dict]:
    import json
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())
    except OSError:
        return 0, {}


def test_sigterm_flushes_checkpoints_and_releases(fresh_stream, champion, threew_dir, tmp_path):
    from petrostream.local import free_port

    stream = fresh_stream(2)
    parts = slices(threew_dir, rows=600)
    records = encode_records(parts)
    put(stream, records)
    port = free_port()
    args = [a for a in FAST if a != "--no-api"]
    proc = start(serve_cmd(*args, "--workers-id", "graceful", "--flush-s", "600", "--max-rows", "100000",
                           "--host", "127.0.0.1", "--port", str(port)), tmp_path / "graceful.log")
    try:
        # no flush is due for 10 minutes: wait until every record was read and scored (buffered), then SIGTERM
        wait_until(lambda: _get(port, "/ready")[0] == 200, what="ready")
        status, body = _get(port, "/ready")
        assert body["model_version"] == "1" and body["consumer"]["running"]
        wait_until(lambda: _metric(port, "petrostream_records_in_total") == len(records), what="all records read")
        assert rows_for(scored_table(), parts).empty
        assert stop(proc, signal.SIGTERM) == 0
    finally:
        stop(proc, signal.SIGKILL)
    assert "SIGTERM" in (tmp_path / "graceful.log").read_text()
    leases = LeaseTable(stream, "observer").list()
    assert all(lease.owner is None and lease.pending is None for lease in leases), "released on SIGTERM"
    assert_exactly_once(scored_table(), parts)  # the final flush wrote every buffered row
    rerun = start(serve_cmd(*FAST, "--workers-id", "next", "--exit-when-idle", "2"), tmp_path / "next.log")
    assert rerun.wait(300) == 0
    assert_exactly_once(scored_table(), parts)  # and the next owner resumed after the checkpoint


@pytest.mark.slow
def test_two_processes_share_four_shards(fresh_stream, champion, threew_dir, tmp_path):
    stream = fresh_stream(4)
    parts = slices(threew_dir, rows=400, instances=MORE)
    args = [*FAST, "--exit-when-idle", "6"]
    a = start(serve_cmd(*args, "--workers-id", "alpha"), tmp_path / "alpha.log")
    b = start(serve_cmd(*args, "--workers-id", "beta"), tmp_path / "beta.log")
    try:
        def balanced():
            owners = [lease.owner for lease in LeaseTable(stream, "o").list()]
            return len(owners) == 4 and owners.count("alpha") == 2 and owners.count("beta") == 2

        wait_until(balanced, what="2 + 2 leases")  # at most ceil(4 shards / 2 workers) each
        put(stream, encode_records(parts))
        assert a.wait(300) == 0, (tmp_path / "alpha.log").read_text()[-3000:]
        assert b.wait(300) == 0, (tmp_path / "beta.log").read_text()[-3000:]
    finally:
        stop(a, signal.SIGKILL)
        stop(b, signal.SIGKILL)
    assert_exactly_once(scored_table(), parts)
    _assert_disjoint(_ranges_by_shard())
    flushed_by = {}
    for who in ("alpha", "beta"):
        for line in (tmp_path / f"{who}.log").read_text().splitlines():
            if "flushed" in line and "worker=" in line:
                flushed_by.setdefault(who, set()).add(line.split("shard=")[1].split()[0])
    assert set(flushed_by) == {"alpha", "beta"}, "both processes must have done work"
