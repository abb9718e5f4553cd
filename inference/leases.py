"""Shard leases in DynamoDB: who reads which shard, and where it is up to.

One item per (namespace, stream, shard) in the lease table (hash key ``shard_id`` S), KCL-style::

    shard_id     "<namespace><stream>/<shardId>"   e.g. "petrostream-ingest/shardId-000000000001"
                                                    or   "archive:petrostream-ingest/shardId-000000000001"
    stream, shard, parents (list of parent shard ids)
    owner        worker id, absent when free
    counter      bumped by EVERY write; every write is conditional on the counter the writer last saw
                 (and on ``owner`` = the writer for owner-only operations), so two workers can never both
                 believe they hold a lease
    checkpoint   "TRIM_HORIZON" | <sequence number of the last durably written record> | "SHARD_END"
    pending      {first, last, name}: the range being written right now (write-ahead intent)
    state        JSON: per-instance watermarks + open episodes as of ``checkpoint``
    warm_from    sequence number from which re-reading up to ``checkpoint`` warms the feature windows
    handoff_to   a worker asked for this lease (load balancing); the owner hands it over between batches
    heartbeat_at wall-clock seconds of the last renew (for humans; expiry does not trust clocks)

Expiry does not compare clocks across machines: a lease is expired for an observer when its
``counter`` has not changed for ``lease_s`` seconds of the observer's own monotonic clock (or it has
no owner).
"""

from __future__ import annotations

import builtins
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from petrostream.settings import Settings, get_settings

log = logging.getLogger(__name__)

TRIM_HORIZON = "TRIM_HORIZON"
SHARD_END = "SHARD_END"


@dataclass
class Lease:
    key: str
    stream: str
    shard: str
    parents: list[str] = field(default_factory=list)
    owner: str | None = None
    counter: int = 0
    checkpoint: str = TRIM_HORIZON
    pending: dict[str, str] | None = None
    state: dict[str, Any] | None = None
    warm_from: str | None = None
    handoff_to: str | None = None
    handed_by: str | None = None
    heartbeat_at: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def finished(self) -> bool:
        return self.checkpoint == SHARD_END

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Lease:
        def s(name: str) -> str | None:
            v = item.get(name)
            return v["S"] if v and "S" in v else None

        pending = None
        if "pending" in item and "M" in item["pending"]:
            pending = {k: v["S"] for k, v in item["pending"]["M"].items()}
        state_raw = s("state")
        return cls(
            key=item["shard_id"]["S"],
            stream=s("stream") or "",
            shard=s("shard") or "",
            parents=[p["S"] for p in item.get("parents", {}).get("L", [])],
            owner=s("owner"),
            counter=int(item.get("counter", {}).get("N", "0")),
            checkpoint=s("checkpoint") or TRIM_HORIZON,
            pending=pending,
            state=json.loads(state_raw) if state_raw else None,
            warm_from=s("warm_from"),
            handoff_to=s("handoff_to"),
            handed_by=s("handed_by"),
            heartbeat_at=float(item.get("heartbeat_at", {}).get("N", "0")),
        )

    def refresh_from(self, other: Lease) -> None:
        for name in ("owner", "counter", "checkpoint", "pending", "state", "warm_from", "handoff_to", "handed_by",
                     "heartbeat_at", "parents"):
            setattr(self, name, getattr(other, name))


class LeaseLost(RuntimeError):
    """This worker no longer holds the lease (taken over, expired, or handed off)."""


class LeaseTable:
    """Conditional reads and writes of one consumer's leases on one stream."""

    def __init__(self, stream: str, worker_id: str, namespace: str = "", settings: Settings | None = None,
                 table: str | None = None, ddb=None):
        self.settings = settings or get_settings()
        self.table = table or self.settings.lease_table
        self.stream = stream
        self.worker_id = worker_id
        self.namespace = namespace
        self._ddb = ddb

    @property
    def ddb(self):
        if self._ddb is None:
            from petrostream.aws import client

            self._ddb = client("dynamodb", self.settings)
        return self._ddb

    @property
    def prefix(self) -> str:
        return f"{self.namespace}{self.stream}/"

    def key(self, shard: str) -> str:
        return f"{self.prefix}{shard}"

    def _conditional_failed(self, exc: Exception) -> bool:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
        return code == "ConditionalCheckFailedException"

    # ------------------------------------------------------------------ reads

    def list(self) -> list[Lease]:
        """Every lease of this namespace + stream (consistent scan, paginated)."""
        leases: list[Lease] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "FilterExpression": "begins_with(shard_id, :p)",
            "ExpressionAttributeValues": {":p": {"S": self.prefix}},
            "ConsistentRead": True,
        }
        while True:
            resp = self.ddb.scan(**kwargs)
            leases += [Lease.from_item(i) for i in resp.get("Items", [])]
            if "LastEvaluatedKey" not in resp:
                break
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
        return sorted(leases, key=lambda lease: lease.shard)

    def get(self, shard: str) -> Lease | None:
        resp = self.ddb.get_item(TableName=self.table, Key={"shard_id": {"S": self.key(shard)}}, ConsistentRead=True)
        return Lease.from_item(resp["Item"]) if "Item" in resp else None

    # ------------------------------------------------------------------ writes

    def create(self, shard: str, parents: builtins.list[str]) -> bool:  # `list` is a method of this class
        """Create the lease of a shard if it does not exist yet (first reader starts at TRIM_HORIZON)."""
        item = {
            "shard_id": {"S": self.key(shard)},
            "stream": {"S": self.stream},
            "shard": {"S": shard},
            "parents": {"L": [{"S": p} for p in parents]},
            "counter": {"N": "0"},
            "checkpoint": {"S": TRIM_HORIZON},
        }
        try:
            self.ddb.put_item(TableName=self.table, Item=item, ConditionExpression="attribute_not_exists(shard_id)")
            return True
        except Exception as exc:
            if self._conditional_failed(exc):
                return False
            raise

    def _update(self, lease: Lease, sets: dict[str, dict], removes: tuple[str, ...] = (),
                condition: str = "", values: dict[str, dict] | None = None) -> Lease | None:
        """Bump the counter and apply ``sets``/``removes`` iff the counter is still ``lease.counter``
        (and ``condition`` holds; ``#o`` names the owner attribute). Returns the new item, or None
        when the condition failed."""
        names = {"#c": "counter"}
        if "#o" in condition:
            names["#o"] = "owner"
        vals: dict[str, dict] = {":expected": {"N": str(lease.counter)}, ":one": {"N": "1"},
                                 ":hb": {"N": f"{time.time():.3f}"}, **(values or {})}
        set_parts = ["#c = #c + :one", "heartbeat_at = :hb"]
        for i, (attr, value) in enumerate(sets.items()):
            names[f"#s{i}"] = attr
            vals[f":s{i}"] = value
            set_parts.append(f"#s{i} = :s{i}")
        expr = "SET " + ", ".join(set_parts)
        if removes:
            for i, attr in enumerate(removes):
                names[f"#r{i}"] = attr
            expr += " REMOVE " + ", ".join(f"#r{i}" for i in range(len(removes)))
        cond = "#c = :expected" + (f" AND ({condition})" if condition else "")
        try:
            resp = self.ddb.update_item(
                TableName=self.table,
                Key={"shard_id": {"S": lease.key}},
                UpdateExpression=expr,
                ConditionExpression=cond,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=vals,
                ReturnValues="ALL_NEW",
            )
        except Exception as exc:
            if self._conditional_failed(exc):
                return None
            raise
        return Lease.from_item(resp["Attributes"])

    def _owner_update(self, lease: Lease, sets: dict[str, dict], removes: tuple[str, ...] = ()) -> Lease:
        """An update only the owner may make; raises LeaseLost when the lease is not (or no longer) ours."""
        with lease.lock:
            new = self._update(lease, sets, removes, "#o = :me", {":me": {"S": self.worker_id}})
            if new is None:
                raise LeaseLost(f"lease {lease.key} is no longer held by {self.worker_id}")
            lease.refresh_from(new)
            return lease

    def take(self, lease: Lease, steal_from: str | None = None) -> Lease | None:
        """Take a free or expired lease (conditional on the counter we observed). None if someone was faster."""
        with lease.lock:
            new = self._update(lease, {"owner": {"S": self.worker_id}}, ("handoff_to", "handed_by"))
            if new is not None:
                lease.refresh_from(new)
                log.info("lease taken", extra={"lease": lease.key, "worker": self.worker_id,
                                               "from": steal_from or "-", "checkpoint": lease.checkpoint})
            return lease if new is not None else None

    def adopt(self, lease: Lease) -> Lease | None:
        """Accept a lease another worker handed over to us (owner already = us, ``handed_by`` set)."""
        with lease.lock:
            new = self._update(lease, {}, ("handed_by",), "#o = :me AND attribute_exists(handed_by)",
                               {":me": {"S": self.worker_id}})
            if new is not None:
                lease.refresh_from(new)
            return lease if new is not None else None

    def renew(self, lease: Lease) -> Lease:
        """Heartbeat. Raises LeaseLost if the lease was taken over. The returned lease shows ``handoff_to``."""
        return self._owner_update(lease, {})

    def request_handoff(self, lease: Lease) -> bool:
        """Ask the owner of ``lease`` to hand it to us. Does not bump the counter (the owner keeps renewing)."""
        try:
            self.ddb.update_item(
                TableName=self.table,
                Key={"shard_id": {"S": lease.key}},
                UpdateExpression="SET handoff_to = :me",
                ConditionExpression="#o = :owner AND attribute_not_exists(handoff_to)",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={":me": {"S": self.worker_id}, ":owner": {"S": lease.owner or ""}},
            )
            return True
        except Exception as exc:
            if self._conditional_failed(exc):
                return False
            raise

    def set_pending(self, lease: Lease, first: str, last: str, name: str) -> Lease:
        """Record the range about to be written (write-ahead): a successor re-writes exactly this range."""
        pending = {"M": {"first": {"S": first}, "last": {"S": last}, "name": {"S": name}}}
        return self._owner_update(lease, {"pending": pending})

    def checkpoint(self, lease: Lease, sequence: str, state: dict | None = None, warm_from: str | None = None) -> Lease:
        """The records up to ``sequence`` are durably in the lake: move the checkpoint, clear ``pending``."""
        sets: dict[str, dict] = {"checkpoint": {"S": sequence}}
        removes: list[str] = ["pending"]
        if state is not None:
            sets["state"] = {"S": json.dumps(state, separators=(",", ":"))}
        if warm_from:
            sets["warm_from"] = {"S": warm_from}
        else:
            removes.append("warm_from")
        return self._owner_update(lease, sets, tuple(removes))

    def release(self, lease: Lease) -> bool:
        """Give the lease up (shutdown): free for anyone at once. False if it was not ours any more."""
        try:
            self._owner_update(lease, {}, ("owner", "handoff_to", "handed_by"))
            return True
        except LeaseLost:
            return False

    def transfer(self, lease: Lease, to: str) -> bool:
        """Hand the lease to ``to`` (after our last checkpoint): owner = to, ``handed_by`` = us."""
        try:
            self._owner_update(lease, {"owner": {"S": to}, "handed_by": {"S": self.worker_id}}, ("handoff_to",))
            return True
        except LeaseLost:
            return False

    def delete_all(self) -> int:
        """Remove every lease of this namespace + stream (tools/tests: start the stream over)."""
        n = 0
        for lease in self.list():
            self.ddb.delete_item(TableName=self.table, Key={"shard_id": {"S": lease.key}})
            n += 1
        return n

