"""Training data: deterministic grouped splits, and bounded per-instance feature extraction.

Splits
------
A 3W instance belongs to a *group*: its well for real instances (``WELL-00004``), itself for
simulated / hand-drawn / synthetic ones (``dataset.InstanceInfo.group``). Whole groups go to one split,
so no well is ever on two sides. Groups are stratified by (real or not, has normal rows or not) -- the
second flag comes from the class folder: instances of transient-type events (1, 2, 5-9) start with
normal operation, class 0 is all normal, classes 3 and 4 carry no normal rows -- so every split gets
normal rows to calibrate and measure false alarms on, and real wells never crowd into one split.

* **holdout** (frozen): inside each stratum, groups ordered by sha256(fixed salt : group id); the first
  ``round(n * 0.2)`` (at least one when the stratum has >= 3 groups) are the holdout. The salt never
  changes and does not depend on the seed, so the same data dir always yields the same holdout files.
* **development** = the other groups, dealt round-robin (ordered by a seeded hash, strata one after the
  other) into ``n_folds`` folds. Fold 0 is the recorded **validation** split, folds 1.. the **train**
  split. Tuning scores every fold with a model fitted on the other folds (grouped cross-validation), so
  each trial is judged on out-of-fold wells -- the validation split and, in turn, every train fold.
  With only a handful of real wells that carry normal rows, one fixed validation fold would rest on a
  single well; rotating it uses all of them.

Each split is recorded (file list + ``dataset.fingerprint``). ``check_no_leakage`` asserts the invariant.

Features
--------
The full 3W has 76.6 M rows, so nothing here holds a whole split of raw rows: instances are read one at a
time, featurised on their whole length (causal rolling windows need the history), and only then reduced
-- fitting rows to a bounded seeded random subsample per instance (normal rows with their own, larger
quota: they are what a novelty detector is fitted on), evaluation rows to every k-th row (``stride``;
1 keeps every row). Features are float32.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from petrostream.dataset import InstanceInfo, discover, fingerprint, read_instance
from petrostream.errors import UserError
from petrostream.progress import Progress
from petrostream.schema import EVENTS, NORMAL

log = logging.getLogger(__name__)

SPLITS: tuple[str, ...] = ("train", "validation", "holdout")
SPLIT_VERSION = "grouped-stratified-folds-v1"
HOLDOUT_SALT = "petrostream-holdout-v1"  # never change: it defines the frozen holdout
HOLDOUT_FRACTION = 0.2
N_FOLDS = 3
# Event classes whose instances begin with normal operation (transient-type events) or are all normal.
_HAS_NORMAL_PREFIX = frozenset({NORMAL} | {k for k, e in EVENTS.items() if e[2]})
META_COLUMNS: tuple[str, ...] = ("instance_id", "well", "source", "event_class", "timestamp", "label")


class SplitError(UserError, ValueError):
    """The data cannot be split as asked (e.g. too few groups)."""


def _unit(salt: str, key: str) -> float:
    """Deterministic uniform number in [0, 1) from a salted sha256 of ``key``."""
    digest = hashlib.sha256(f"{salt}:{key}".encode()).hexdigest()
    return int(digest[:16], 16) / 2**64


def stratum(infos: Sequence[InstanceInfo]) -> tuple[bool, bool]:
    """(real?, has normal rows?) of one group, from file names alone."""
    return (any(i.is_real for i in infos), any(i.event_class in _HAS_NORMAL_PREFIX for i in infos))


@dataclass
class SplitPlan:
    """Which instance goes where, and the evidence (file lists, fingerprints) to reproduce it."""

    data_dir: str
    seed: int
    assignment: dict[str, str]  # instance_id -> split
    groups: dict[str, list[str]]  # split -> sorted group ids
    infos: dict[str, list[InstanceInfo]] = field(repr=False)  # split -> instances
    fingerprints: dict[str, str] = field(default_factory=dict)  # split -> sha256 (+ "all")
    folds: dict[str, int] = field(default_factory=dict)  # development group -> fold (0 = validation)
    version: str = SPLIT_VERSION

    @property
    def n_folds(self) -> int:
        return max(self.folds.values(), default=0) + 1

    @property
    def development(self) -> list[InstanceInfo]:
        """Validation + train instances (the folds), in a stable order."""
        return self.infos["validation"] + self.infos["train"]

    def fold_of(self, info: InstanceInfo) -> int:
        return self.folds[info.group]

    def files(self, split: str) -> list[str]:
        root = Path(self.data_dir)
        return sorted(i.path.relative_to(root).as_posix() for i in self.infos[split])

    def split_of_group(self) -> dict[str, str]:
        return {g: s for s, gs in self.groups.items() for g in gs}

    def to_dict(self) -> dict:
        return {
            "version": self.version,
            "data_dir": self.data_dir,
            "seed": self.seed,
            "holdout_salt": HOLDOUT_SALT,
            "holdout_fraction": HOLDOUT_FRACTION,
            "folds": self.folds,
            "fingerprints": self.fingerprints,
            "groups": self.groups,
            "files": {s: self.files(s) for s in SPLITS},
            "counts": {s: len(self.infos[s]) for s in SPLITS},
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def summary(self) -> str:
        parts = []
        for s in SPLITS:
            real = sorted({i.well_id for i in self.infos[s] if i.is_real})
            parts.append(f"{s}: {len(self.infos[s])} instances, {len(self.groups[s])} groups (real wells: "
                         f"{', '.join(real) or '-'})")
        return "; ".join(parts)


def _take(n: int, fraction: float) -> int:
    return max(1, round(n * fraction)) if n >= 3 else 0


def make_splits(
    data_dir: str | Path,
    seed: int = 0,
    infos: Iterable[InstanceInfo] | None = None,
    with_fingerprints: bool = True,
    n_folds: int = N_FOLDS,
) -> SplitPlan:
    """Split a 3W-layout directory into holdout and development folds by group (see module doc)."""
    if n_folds < 2:
        raise SplitError(f"n_folds must be >= 2, got {n_folds}")
    root = Path(data_dir).resolve()
    all_infos = list(infos) if infos is not None else discover(root)
    all_infos = [InstanceInfo(Path(i.path).resolve(), i.event_class, i.source, i.well_id, i.start) for i in all_infos]
    by_group: dict[str, list[InstanceInfo]] = {}
    for info in all_infos:
        by_group.setdefault(info.group, []).append(info)
    strata: dict[tuple[bool, bool], list[str]] = {}
    for group, members in by_group.items():
        strata.setdefault(stratum(members), []).append(group)

    split_of: dict[str, str] = {}
    folds: dict[str, int] = {}
    dealt = 0
    for key in sorted(strata, reverse=True):  # real-with-normal first: the scarcest groups spread most evenly
        groups = strata[key]
        ordered = sorted(groups, key=lambda g: (_unit(HOLDOUT_SALT, g), g))
        n_hold = _take(len(groups), HOLDOUT_FRACTION)
        for g in ordered[:n_hold]:
            split_of[g] = "holdout"
        rest = sorted(ordered[n_hold:], key=lambda g: (_unit(f"petrostream-folds-{seed}", g), g))
        for g in rest:
            folds[g] = dealt % n_folds
            split_of[g] = "validation" if folds[g] == 0 else "train"
            dealt += 1

    plan_infos = {s: [i for i in all_infos if split_of[i.group] == s] for s in SPLITS}
    plan = SplitPlan(
        data_dir=str(root),
        seed=seed,
        assignment={i.instance_id: split_of[i.group] for i in all_infos},
        groups={s: sorted(g for g, sp in split_of.items() if sp == s) for s in SPLITS},
        infos=plan_infos,
        folds=dict(sorted(folds.items())),
    )
    if not plan_infos["train"] or not plan_infos["validation"]:
        raise SplitError(f"{root}: {len(by_group)} group(s) are too few to split by well ({plan.summary()})")
    if with_fingerprints:
        plan.fingerprints = {s: fingerprint(plan_infos[s]) if plan_infos[s] else "" for s in SPLITS}
        plan.fingerprints["all"] = fingerprint(all_infos)
    log.info("split", extra={"summary": plan.summary(), "holdout_fp": plan.fingerprints.get("holdout", "")[:12]})
    return plan


def check_no_leakage(plan: SplitPlan) -> None:
    """Raise if a group (well) appears in two splits or two folds -- the invariant the evaluation rests on."""
    seen: dict[str, str] = {}
    for split in SPLITS:
        for info in plan.infos[split]:
            other = seen.setdefault(info.group, split)
            if other != split:
                raise SplitError(f"group {info.group} is in both {other} and {split}")
            if split != "holdout" and info.group not in plan.folds:
                raise SplitError(f"development group {info.group} has no fold")
    if set(plan.folds) & set(plan.groups["holdout"]):
        raise SplitError("a holdout group is in a development fold")


# ---------------------------------------------------------------------------------------- features


@dataclass
class FeatureTable:
    """Feature rows (float32) plus their identity: instance, well, source, folder class, timestamp, label."""

    X: pd.DataFrame
    meta: pd.DataFrame

    def __len__(self) -> int:
        return len(self.X)

    @property
    def labels(self) -> pd.Series:
        return self.meta["label"]

    def normal_mask(self) -> np.ndarray:
        return (self.meta["label"] == NORMAL).fillna(False).to_numpy(dtype=bool)

    def select(self, columns: Sequence[str] | None = None, rows: np.ndarray | None = None) -> FeatureTable:
        X = self.X if columns is None else self.X.reindex(columns=list(columns))
        if rows is None:
            return FeatureTable(X, self.meta)
        return FeatureTable(X.iloc[rows].reset_index(drop=True), self.meta.iloc[rows].reset_index(drop=True))

    def frame(self) -> pd.DataFrame:
        """Meta columns as a frame for metrics (timestamp as a column)."""
        return self.meta.copy()

    @classmethod
    def concat(cls, parts: Sequence[FeatureTable]) -> FeatureTable:
        if not parts:
            return cls(pd.DataFrame(dtype="float32"), pd.DataFrame(columns=list(META_COLUMNS)))
        X = pd.concat([p.X for p in parts], ignore_index=True)
        meta = pd.concat([p.meta for p in parts], ignore_index=True)
        return cls(X.astype("float32"), meta)


def sample_indices(labels: pd.Series, max_rows: int, rng: np.random.Generator,
                   max_normal: int | None = None) -> np.ndarray:
    """Bounded subsample of one instance: up to ``max_normal`` (default ``max_rows``) label-0 rows AND up to
    ``max_rows`` other rows (events, transients, unlabelled). Normal rows are scarce (~2 % of the sample)
    and are what a novelty detector is fitted on, hence their own, larger quota."""
    normal = (labels == NORMAL).fillna(False).to_numpy(dtype=bool)
    out = []
    for mask, cap in ((normal, max_normal or max_rows), (~normal, max_rows)):
        idx = np.flatnonzero(mask)
        if len(idx) > cap:
            idx = rng.choice(idx, size=cap, replace=False)
        out.append(idx)
    return np.sort(np.concatenate(out))


def instance_rng(instance_id: str, seed: int) -> np.random.Generator:
    return np.random.default_rng(int(hashlib.sha256(f"{seed}:{instance_id}".encode()).hexdigest()[:16], 16))


def meta_frame(info: InstanceInfo, index: pd.DatetimeIndex, labels: pd.Series) -> pd.DataFrame:
    n = len(index)
    return pd.DataFrame(
        {
            "instance_id": np.full(n, info.instance_id, dtype=object),
            "well": np.full(n, info.well_id, dtype=object),
            "source": np.full(n, info.source, dtype=object),
            "event_class": np.full(n, info.event_class, dtype="int16"),
            "timestamp": np.asarray(index),
            "label": pd.array(labels.to_numpy(), dtype="Int64"),
        }
    )


def total_rows(infos: Iterable[InstanceInfo]) -> int:
    """Row count from parquet footers (no data read)."""
    import pyarrow.parquet as pq

    return sum(pq.read_metadata(i.path).num_rows for i in infos)


Featurize = Callable[[pd.DataFrame], pd.DataFrame]


def build_features(
    infos: Sequence[InstanceInfo],
    featurize: Featurize,
    *,
    max_rows: int | None = None,
    max_normal: int | None = None,
    stride: int = 1,
    seed: int = 0,
    label: str = "features",
    progress: bool = True,
) -> FeatureTable:
    """Read and featurise instances one at a time; keep a subsample (``max_rows``/``max_normal`` per instance)
    or every ``stride``-th row. Memory is bounded by what is kept, never by the raw data."""
    if max_rows is not None:
        fit = build_fit_and_eval(infos, featurize, max_rows=max_rows, max_normal=max_normal, stride=None,
                                 seed=seed, label=label, progress=progress)[0]
        assert fit is not None  # max_rows given: the fitting subsample is built
        return fit
    ev = build_fit_and_eval(infos, featurize, max_rows=None, stride=stride, label=label, progress=progress)[1]
    assert ev is not None  # stride given: the evaluation rows are built
    return ev


def build_fit_and_eval(
    infos: Sequence[InstanceInfo],
    featurize: Featurize,
    *,
    max_rows: int | None,
    max_normal: int | None = None,
    stride: int | None = 1,
    max_eval_rows: int | None = None,
    seed: int = 0,
    label: str = "features",
    progress: bool = True,
) -> tuple[FeatureTable | None, FeatureTable | None]:
    """One pass over the instances (each read and featurised once) giving both the fitting subsample
    (``max_rows`` / ``max_normal`` per instance; None: skipped) and the evaluation rows (every ``stride``-th
    row, the stride raised per instance so that at most ``max_eval_rows`` rows are kept; None: skipped).
    Evaluation rows carry their instance's stride in ``meta['stride']`` (see ``tuning.evaluate_scores``)."""
    prog = Progress(label, total=total_rows(infos), unit="rows", enabled=progress, interval=2.0)
    fit_parts: list[FeatureTable] = []
    eval_parts: list[FeatureTable] = []
    for info in infos:
        frame = read_instance(info)
        labels = frame["class"] if "class" in frame.columns else pd.Series(pd.NA, index=frame.index, dtype="Int64")
        feats = featurize(frame.drop(columns=[c for c in ("class", "state") if c in frame.columns]))
        selections = []
        if max_rows is not None:
            selections.append((fit_parts, sample_indices(labels, max_rows, instance_rng(info.instance_id, seed),
                                                         max_normal)))
        step = max(1, stride or 1)
        if stride is not None:
            if max_eval_rows:
                step = max(step, -(-len(frame) // max_eval_rows))
            selections.append((eval_parts, np.arange(0, len(frame), step)))
        for parts, rows in selections:
            X = feats.iloc[rows].astype("float32").reset_index(drop=True)
            meta = meta_frame(info, frame.index[rows], labels.iloc[rows])
            if parts is eval_parts:
                meta["stride"] = np.int32(step)
            parts.append(FeatureTable(X, meta))
        prog.update(len(frame))
    summary = prog.close()
    log.info("features built", extra={"what": label, "summary": summary, "instances": len(infos)})
    return (FeatureTable.concat(fit_parts) if max_rows is not None else None,
            FeatureTable.concat(eval_parts) if stride is not None else None)
