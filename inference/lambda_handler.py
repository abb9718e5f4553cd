"""AWS Lambda alternative to the ECS service: a Kinesis event-source mapping calls ``handler(event, context)``.

The same core as the service: ``wire.decode_batch`` -> ``ShardScorer`` (one model call per invocation)
-> ``LakeSink`` (scored rows named ``<shard>-<first seq>-<last seq>``, episodes). The model is loaded once
per container (and re-checked against the manifest every ``PETROSTREAM_LAMBDA_MODEL_POLL_S``, default
300 s); per-instance stream state lives as long as the container.

Malformed records (``PETROSTREAM_LAMBDA_BAD_RECORDS``):

* ``report`` (default): the records before the first malformed one are scored and written; every
  malformed record is returned in ``batchItemFailures``. Lambda resumes from the lowest reported
  sequence number, retries it, and finally hands it to the on-failure destination (SQS); nothing after
  it is written twice because nothing after it was written.
* ``quarantine``: malformed records go to the quarantine prefix (needs s3:PutObject on quarantine/*)
  and the batch carries on; if the quarantine write fails they are reported as in ``report``.

Any other failure (model, lake) reports the first record of the batch, so Lambda retries the whole
batch (the deterministic object names make the retry overwrite, not duplicate).

Episodes: every invocation is a flush, and by default (``PETROSTREAM_LAMBDA_EPISODE_WRITE_S`` = 0) it
writes every episode that changed, open ones included. A value > 0 re-writes an open episode at most that
often (``EpisodeTracker.write_interval_s``); a held-back version is written by a later invocation of the
same container once due, or when the episode closes. There is no final drain: Lambda gives a function no
notice before it freezes or recycles a container, and draining at the end of every invocation would undo
the throttle. A recycled container therefore leaves the last held-back version of an open episode unwritten,
as it already leaves that episode open (the Lambda keeps episode state only in the container).
"""

from __future__ import annotations

import base64
import logging
import os
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)

_STATE: dict[str, Any] = {}


def _state() -> dict[str, Any]:
    """Per-container state: model holder, lake sink, metrics, one ShardScorer per shard."""
    if not _STATE:
        from inference.metrics import Metrics
        from inference.model_loader import ModelHolder
        from inference.sink import LakeSink

        poll = float(os.environ.get("PETROSTREAM_LAMBDA_MODEL_POLL_S", "300"))
        episode_write_s = _episode_write_s()
        metrics = Metrics()
        _STATE.update(holder=ModelHolder(poll_s=poll, metrics=metrics, use_mlflow=False), sink=LakeSink(),
                      metrics=metrics, scorers={}, episode_write_s=episode_write_s)
    return _STATE


def _episode_write_s() -> float:
    """``PETROSTREAM_LAMBDA_EPISODE_WRITE_S`` (default 0: every invocation writes every changed episode)."""
    import math

    from petrostream.errors import UserError

    raw = os.environ.get("PETROSTREAM_LAMBDA_EPISODE_WRITE_S", "").strip() or "0"
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not (math.isfinite(value) and value >= 0):
        raise UserError(f"PETROSTREAM_LAMBDA_EPISODE_WRITE_S must be a number >= 0 (0: every invocation), got {raw!r}")
    return value


def _new_scorer(st: dict[str, Any]):
    from inference.scoring import ShardScorer

    return ShardScorer(st["holder"].current, episode_write_s=st["episode_write_s"])


def reset() -> None:
    """Forget the container state (tests; a new container)."""
    _STATE.clear()


def _records(event: dict) -> list[dict]:
    """Lambda's Kinesis event -> the consumer's record shape (Data, SequenceNumber, ...)."""
    out = []
    for r in event.get("Records", []):
        k = r.get("kinesis", {})
        try:
            data = base64.b64decode(k.get("data", ""), validate=True)
        except (ValueError, TypeError):
            data = b""  # undecodable base64: the wire decoder rejects it with a reason
        ts = k.get("approximateArrivalTimestamp")
        out.append({
            "Data": data,
            "SequenceNumber": k.get("sequenceNumber", ""),
            "PartitionKey": k.get("partitionKey"),
            "ApproximateArrivalTimestamp": datetime.fromtimestamp(float(ts), UTC) if ts is not None else None,
            "shard": (r.get("eventID") or "unknown:").split(":", 1)[0],
        })
    return out


def _failures(seqs: list[str]) -> dict:
    return {"batchItemFailures": [{"itemIdentifier": s} for s in seqs]}


def handler(event: dict, context: Any = None) -> dict:
    from inference.sink import ScoringProcessor
    from petrostream import wire

    records = _records(event)
    if not records:
        return _failures([])
    st = _state()
    holder = st["holder"]
    mode = os.environ.get("PETROSTREAM_LAMBDA_BAD_RECORDS", "report").strip().lower()
    failed: list[str] = []
    by_shard: dict[str, list[dict]] = {}
    for r in records:  # an event-source mapping batch comes from one shard; be safe anyway
        by_shard.setdefault(r["shard"], []).append(r)
    for shard, recs in by_shard.items():
        try:
            holder.maybe_refresh()
            if holder.current() is None:
                raise RuntimeError(f"no champion model ({holder.last_error})")
            rejected = wire.decode_batch([r["Data"] for r in recs]).rejected
            bad = sorted(i for i, _ in rejected)
            take = recs
            if bad and mode != "quarantine":
                take = recs[: bad[0]]
                failed += [recs[i]["SequenceNumber"] for i in bad]
                log.warning("malformed records reported as failures",
                            extra={"shard": shard, "n": len(bad), "reason": rejected[0][1]})
            if not take:
                continue
            scorers = st["scorers"]
            scorer = scorers.get(shard) or _new_scorer(st)
            scorers[shard] = scorer
            proc = ScoringProcessor(shard, scorer, st["sink"], st["metrics"])
            proc.consumer = "lambda"
            proc.process(take)
            name = f"{shard}-{take[0]['SequenceNumber']}-{take[-1]['SequenceNumber']}"
            if proc.buf.quarantine and mode != "quarantine":
                raise RuntimeError(f"scoring failed: {proc.buf.quarantine[0]['reason']}")
            if proc.buf.quarantine:  # quarantine mode: set the malformed records aside first
                try:
                    st["sink"].quarantine(proc.buf.quarantine, name, proc.buf.quarantine_dt or _today())
                    proc.buf.quarantine = []
                except Exception:
                    log.warning("quarantine not writable; reporting the malformed records instead",
                                extra={"shard": shard}, exc_info=True)
                    st["scorers"].pop(shard, None)
                    if not bad:
                        raise
                    failed += [recs[i]["SequenceNumber"] for i in bad]
                    if bad[0] > 0:
                        _write_prefix(st, shard, recs[: bad[0]])
                    continue
            proc.flush(name)
        except Exception:
            log.exception("batch failed; reporting it for retry", extra={"shard": shard})
            st["scorers"].pop(shard, None)  # state may be half-updated: start clean (no row is then dropped)
            failed.append(recs[0]["SequenceNumber"])
    return _failures(sorted(set(failed), key=_seq_key))


def _today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")


def _write_prefix(st: dict, shard: str, prefix: list[dict]) -> None:
    from inference.sink import ScoringProcessor

    scorer = _new_scorer(st)
    st["scorers"][shard] = scorer
    proc = ScoringProcessor(shard, scorer, st["sink"], st["metrics"])
    proc.consumer = "lambda"
    proc.process(prefix)
    proc.flush(f"{shard}-{prefix[0]['SequenceNumber']}-{prefix[-1]['SequenceNumber']}")


def _seq_key(s: str) -> tuple[int, str]:
    return (int(s), s) if s.isdigit() else (0, s)
