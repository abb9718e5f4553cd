"""Reading 3W instances from a 3W-layout directory (``<class>/<instance>.parquet``).

Instances are discovered from paths without reading them, and read one at a time, so a directory
of any size can be iterated with bounded memory.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from petrostream.errors import UserError
from petrostream.schema import EVENTS, LABEL_COLUMNS, TIMESTAMP, VARIABLE_NAMES

_WELL = re.compile(r"^WELL-(?P<well>\d{5})_(?P<start>\d{14})$")
_OTHER = re.compile(r"^(?P<source>SIMULATED|DRAWN|SYNTHETIC)_(?P<n>[A-Za-z0-9-]+)$")


class DataError(UserError, ValueError):
    """A 3W file that cannot be used; the message names the file and the problem in one line."""


@dataclass(frozen=True)
class InstanceInfo:
    """What the path of a 3W instance tells: event class, source, well and start time."""

    path: Path
    event_class: int
    source: str  # REAL | SIMULATED | DRAWN | SYNTHETIC
    well_id: str  # real well id (WELL-00001), or the instance id for simulated/drawn/synthetic data
    start: datetime | None

    @property
    def instance_id(self) -> str:
        """Unique, key-safe id: ``<class>_<file stem>`` (simulated names repeat across classes)."""
        return f"{self.event_class}_{self.path.stem}"

    @property
    def group(self) -> str:
        """Split group: real instances group by well, others are their own group."""
        return self.well_id

    @property
    def is_real(self) -> bool:
        return self.source == "REAL"


def parse_instance_path(path: str | Path) -> InstanceInfo:
    """Metadata from ``<class>/<WELL-00001_20170316120203|SIMULATED_00001|DRAWN_00003>.parquet``."""
    p = Path(path)
    try:
        event_class = int(p.parent.name)
    except ValueError:
        raise DataError(f"{p}: parent folder {p.parent.name!r} is not a 3W class number") from None
    if event_class not in EVENTS:
        raise DataError(f"{p}: class folder {event_class} is not a 3W event class (0-9)")
    m = _WELL.match(p.stem)
    if m:
        start = datetime.strptime(m["start"], "%Y%m%d%H%M%S")
        return InstanceInfo(p, event_class, "REAL", f"WELL-{m['well']}", start)
    m = _OTHER.match(p.stem)
    if m:
        return InstanceInfo(p, event_class, m["source"], f"{event_class}_{p.stem}", None)
    raise DataError(f"{p}: file name is not WELL-nnnnn_YYYYMMDDhhmmss, SIMULATED_n, DRAWN_n or SYNTHETIC_n")


def discover(root: str | Path, classes: Iterable[int] | None = None) -> list[InstanceInfo]:
    """All instances under a 3W-layout root, sorted by class then name. Raises DataError if none."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: not a directory")
    wanted = set(classes) if classes is not None else None
    found: list[InstanceInfo] = []
    for path in sorted(root.glob("*/*.parquet"), key=lambda q: (_class_key(q), q.name)):
        if not path.parent.name.isdigit():
            continue
        info = parse_instance_path(path)
        if wanted is None or info.event_class in wanted:
            found.append(info)
    if not found:
        raise DataError(f"{root}: no 3W instances found (expected <class>/<instance>.parquet)")
    return found


def _class_key(p: Path) -> int:
    return int(p.parent.name) if p.parent.name.isdigit() else 1_000


def read_instance(source: str | Path | InstanceInfo, columns: Iterable[str] | None = None) -> pd.DataFrame:
    """Read one instance: timestamp index (naive, 1 Hz), float variables, nullable Int64 labels.

    Variables absent from the file are simply absent from the frame (the shared sample has only the
    seven v1 variables); use ``df.reindex(columns=...)`` for a fixed schema.
    """
    path = source.path if isinstance(source, InstanceInfo) else Path(source)
    try:
        df = pd.read_parquet(path)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise DataError(f"{path}: not a readable parquet file ({_first_line(exc)})") from None
    if df.index.name != TIMESTAMP:
        if TIMESTAMP in df.columns:
            df = df.set_index(TIMESTAMP)
        else:
            raise DataError(f"{path}: no '{TIMESTAMP}' index or column")
    known = [c for c in df.columns if c in VARIABLE_NAMES or c in LABEL_COLUMNS]
    if not known:
        raise DataError(f"{path}: none of the 3W variables present (columns: {', '.join(map(str, df.columns[:6]))})")
    if len(df) == 0:
        raise DataError(f"{path}: no rows")
    df.index = pd.DatetimeIndex(pd.to_datetime(df.index), name=TIMESTAMP)
    if df.index.tz is not None:
        df.index = df.index.tz_convert("UTC").tz_localize(None)
    df = df[known]
    for col in df.columns:
        if col in LABEL_COLUMNS:
            df[col] = _as_labels(df[col], path)
        else:
            df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
    if columns is not None:
        df = df.reindex(columns=list(columns))
    return df


def _as_labels(s: pd.Series, path: Path) -> pd.Series:
    num = pd.to_numeric(s, errors="coerce")
    frac = num.dropna()
    if len(frac) and not np.all(np.equal(np.mod(frac.to_numpy(dtype=float), 1), 0)):
        raise DataError(f"{path}: label column {s.name!r} holds non-integer values")
    return num.round().astype("Int64")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:160] if text else type(exc).__name__


def iter_instances(
    root: str | Path, classes: Iterable[int] | None = None
) -> Iterator[tuple[InstanceInfo, pd.DataFrame]]:
    """Yield (info, frame) one instance at a time (bounded memory)."""
    for info in discover(root, classes):
        yield info, read_instance(info)


def fingerprint(infos: Iterable[InstanceInfo]) -> str:
    """sha256 over the relative paths and bytes of the given instance files (order independent)."""
    h = hashlib.sha256()
    for info in sorted(infos, key=lambda i: i.instance_id):
        h.update(info.instance_id.encode())
        with open(info.path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def frozen_variables(df: pd.DataFrame, min_rows: int = 60) -> list[str]:
    """Variables that never change over the instance (frozen sensors), ignoring all-NaN ones."""
    out = []
    for col in df.columns:
        if col in LABEL_COLUMNS:
            continue
        s = df[col].dropna()
        if len(s) >= min_rows and s.nunique() == 1:
            out.append(col)
    return out
