"""Producer: replays 3W instances into Kinesis as if live (see docs/producer.md).

Public API (imported lazily, so ``producer.cli`` stays light)::

    from producer import replay, ReplaySummary, KinesisWriter, put_record_per_row, ProducerError
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "replay": "producer.replay",
    "ReplaySummary": "producer.replay",
    "NoInstancesError": "producer.replay",
    "Scheduler": "producer.replay",
    "resolve_sources": "producer.replay",
    "put_record_per_row": "producer.replay",
    "KinesisWriter": "producer.kinesis_writer",
    "ProducerError": "producer.kinesis_writer",
    "RecordMeta": "producer.kinesis_writer",
    "ShardMap": "producer.kinesis_writer",
    "TokenBucket": "producer.kinesis_writer",
    "Checkpoint": "producer.checkpoint",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'producer' has no attribute {name!r}")
