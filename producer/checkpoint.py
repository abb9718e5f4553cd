"""Producer checkpoint: per instance, the last timestamp Kinesis acknowledged.

One JSON file per stream under the state dir (``<state_dir>/producer/<stream>.json``). It is written
only from acknowledged puts (the writer's contiguous acked watermark), atomically (temp file +
rename), so an interrupted or killed producer resumes with ``--resume`` without skipping a row.
A row is re-sent at most when the process died between a put and the next checkpoint write
(at-least-once; a clean SIGINT/SIGTERM flushes and checkpoints, so it re-sends nothing).
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from petrostream.errors import UserError

VERSION = 1


class CheckpointError(UserError, ValueError):
    """A checkpoint file that cannot be used (the message names it)."""


def default_path(stream: str, state_dir: str | Path) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", stream)
    return Path(state_dir) / "producer" / f"{safe}.json"


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


@dataclass
class Checkpoint:
    path: Path
    stream: str
    instances: dict[str, dict] = field(default_factory=dict)  # instance_id -> {"last_ts_ms", "last_ts", "rows"}

    @classmethod
    def load(cls, path: str | Path, stream: str) -> Checkpoint:
        """Read a checkpoint; a missing file is an empty checkpoint, a corrupt one a one-line error."""
        p = Path(path)
        if not p.exists():
            return cls(p, stream)
        try:
            doc = json.loads(p.read_text())
            if doc.get("version") != VERSION or not isinstance(doc.get("instances"), dict):
                raise ValueError(f"unsupported version {doc.get('version')!r}")
            instances = {str(k): dict(v) for k, v in doc["instances"].items()}
            for v in instances.values():
                int(v["last_ts_ms"])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CheckpointError(
                f"{p}: not a usable producer checkpoint ({exc}); delete it or run without --resume"
            ) from None
        if doc.get("stream") not in (None, stream):
            raise CheckpointError(f"{p}: checkpoint is for stream {doc.get('stream')!r}, not {stream!r}")
        return cls(p, stream, instances)

    def last_ts_ms(self, instance_id: str) -> int | None:
        entry = self.instances.get(instance_id)
        return int(entry["last_ts_ms"]) if entry else None

    def advance(self, instance_id: str, last_ts_ms: int, rows: int) -> None:
        """Record that every row of ``instance_id`` up to ``last_ts_ms`` is acknowledged."""
        entry = self.instances.get(instance_id)
        if entry and int(entry["last_ts_ms"]) >= last_ts_ms:
            return
        prev_rows = int(entry.get("rows", 0)) if entry else 0
        self.instances[instance_id] = {"last_ts_ms": int(last_ts_ms), "last_ts": _iso(last_ts_ms),
                                       "rows": prev_rows + int(rows)}

    @property
    def rows(self) -> int:
        return sum(int(v.get("rows", 0)) for v in self.instances.values())

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        doc = {
            "version": VERSION,
            "stream": self.stream,
            "updated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "instances": dict(sorted(self.instances.items())),
        }
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with open(tmp, "w") as fh:
            json.dump(doc, fh, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
