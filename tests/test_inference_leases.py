"""DynamoDB lease semantics against the emulator: conditional takes, renewals, fencing, handoff, replay."""

from __future__ import annotations

import uuid

import pytest

from inference.leases import TRIM_HORIZON, LeaseLost, LeaseTable


@pytest.fixture
def stream(emulator):
    return f"lease-test-{uuid.uuid4().hex[:8]}"  # leases are keyed by stream: no stream needed here


def test_create_is_idempotent_and_namespaced(stream):
    a = LeaseTable(stream, "a")
    assert a.create("shardId-0", []) is True
    assert a.create("shardId-0", []) is False
    assert LeaseTable(stream, "a", namespace="archive:").list() == []
    (lease,) = a.list()
    assert lease.key == f"{stream}/shardId-0" and lease.checkpoint == TRIM_HORIZON and lease.owner is None


def test_only_one_worker_wins_a_take_and_the_loser_is_fenced(stream):
    a, b = LeaseTable(stream, "a"), LeaseTable(stream, "b")
    a.create("shardId-0", [])
    seen_by_a, seen_by_b = a.list()[0], b.list()[0]  # both saw counter 0
    assert a.take(seen_by_a) is not None
    assert b.take(seen_by_b) is None  # conditional on the counter it saw
    held = seen_by_a
    a.renew(held)
    a.checkpoint(held, "42", {"watermarks": {"i": 1}})
    # b steals after expiry (its own observation), using the latest counter
    stolen = b.take(b.list()[0], steal_from="a")
    assert stolen is not None and stolen.owner == "b" and stolen.checkpoint == "42"
    assert stolen.state == {"watermarks": {"i": 1}}
    # the old owner can no longer write anything: not renew, not pending, not checkpoint
    with pytest.raises(LeaseLost):
        a.renew(held)
    with pytest.raises(LeaseLost):
        a.set_pending(held, "43", "50", "x")
    with pytest.raises(LeaseLost):
        a.checkpoint(held, "50")
    assert a.release(held) is False
    assert b.get("shardId-0").checkpoint == "42"


def test_pending_survives_release_and_checkpoint_clears_it(stream):
    a, b = LeaseTable(stream, "a"), LeaseTable(stream, "b")
    a.create("shardId-0", [])
    lease = a.take(a.list()[0])
    a.set_pending(lease, "1", "9", "shardId-0-1-9")
    assert a.release(lease)
    nxt = b.take(b.list()[0])
    assert nxt.pending == {"first": "1", "last": "9", "name": "shardId-0-1-9"} and nxt.owner == "b"
    b.checkpoint(nxt, "9", None, warm_from="1")
    after = b.get("shardId-0")
    assert after.pending is None and after.checkpoint == "9" and after.warm_from == "1"


def test_handoff_request_transfer_and_adopt(stream):
    a, b = LeaseTable(stream, "a"), LeaseTable(stream, "b")
    a.create("shardId-0", [])
    lease = a.take(a.list()[0])
    assert b.request_handoff(b.list()[0]) is True
    assert b.request_handoff(b.list()[0]) is False  # one request at a time
    assert a.renew(lease).handoff_to == "b"  # the owner learns it on its heartbeat
    assert a.transfer(lease, "b")
    moved = b.list()[0]
    assert moved.owner == "b" and moved.handed_by == "a" and moved.handoff_to is None
    assert b.adopt(moved) is not None and b.get("shardId-0").handed_by is None
    with pytest.raises(LeaseLost):
        a.renew(lease)


def test_child_inherits_parent_state(stream):
    from inference.consumer import Consumer, ConsumerConfig, ShardWorker
    from inference.leases import SHARD_END

    t = LeaseTable(stream, "w")
    for shard in ("p1", "p2"):
        t.create(shard, [])
    t.create("child", ["p1", "p2"])
    p1, p2 = (t.take(lease) for lease in t.list() if lease.shard in ("p1", "p2"))
    t.checkpoint(p1, SHARD_END, {"v": 1, "watermarks": {"a": 10, "b": 5}, "episodes": {"a": {"start": 1}}})
    t.checkpoint(p2, SHARD_END, {"v": 1, "watermarks": {"b": 7}, "episodes": {}})
    consumer = Consumer(ConsumerConfig(stream=stream, worker_id="w"), lambda shard: None)
    child = t.get("child")
    worker = ShardWorker(consumer, child, processor=None)
    state = worker._parents_state(child.parents)
    assert state["watermarks"] == {"a": 10, "b": 7} and state["episodes"] == {"a": {"start": 1}}
