"""Causal, scale-free window features over the 3W variables (pure numpy/pandas).

Every feature of row ``t`` depends only on rows ``t - max_window + 1 .. t`` of the same instance, so:

* features are causal (the future never leaks into the past);
* a stream keeps only the last ``max_window - 1`` rows per instance (``StreamingFeatures``) and still
  reproduces the batch result bit for bit.

Bit-exact parity comes from how window sums are computed: the timeline of an instance is cut into
blocks of ``B`` rows aligned on the row position inside the instance (van Herk / Gil-Werman), and a
window sum is ``suffix(block k-1) + prefix(block k)``, each a sequential cumulative sum inside one
block. The same additions happen in the same order whether the rows arrive in one batch or in
micro-batches, unlike online add/remove rolling sums whose rounding depends on the whole history.
The alignment only changes rounding, never what a window covers.

Features (per variable ``v`` and window ``w``; see docs/model.md):

* continuous variables: ``v__z_w`` (z-score of the value against its trailing window, clipped),
  ``v__std_rel_w`` / ``v__range_rel_w`` (log10 of rolling std / range relative to |rolling mean|),
  ``v__trend_w`` (asinh of the relative change between the window's two halves),
  ``v__frozen_w`` (no change over the window), ``v__missing``;
* valve states (categorical): ``v__value`` (raw 0/0.5/1, -1 when missing), ``v__changed_w``, ``v__missing``.

Two engines compute the same features: a compiled kernel (``petrostream.feature_kernel``, numba; the
default) and the numpy reference below (``PETROSTREAM_ENGINE=numpy``). Tests hold them equal bit
for bit on the real sample; the kernel is ~3x faster in batch and keeps serving cheap.

Rows are assumed to be 1 Hz (a window of ``w`` rows = ``w`` seconds); ``P-PDG`` reading exactly 0 Pa is a
dead gauge and treated as missing. Output is float32 with no NaN.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from petrostream import schema
from petrostream.errors import UserError

FEATURES_VERSION = 1
GROUPS: tuple[str, ...] = ("level", "spread", "trend", "masks")
KEY = "instance_id"

REL_FLOOR = 1e-6  # std floor relative to |mean|: changes below 1 ppm of the level are quantisation noise
ABS_FLOOR = 1e-12  # absolute floor for divisions (levels of exactly 0, e.g. QGL with gas lift off)
Z_CLIP = 10.0
LOG_REL_MIN, LOG_REL_MAX = -7.0, 3.0  # log10 range of relative spreads
TREND_SCALE = 1e-3  # asinh(d / 1e-3): linear below a 0.1 % change, logarithmic above
TREND_CLIP = 15.0
MISSING_VALVE = -1.0


class FeatureConfigError(UserError, ValueError):
    """An invalid feature configuration (names the field)."""


@dataclass(frozen=True)
class FeatureConfig:
    windows: tuple[int, ...] = (30, 300)
    groups: tuple[str, ...] = GROUPS
    variables: tuple[str, ...] = field(default=schema.V1_VARIABLES)

    def __post_init__(self) -> None:
        windows = tuple(int(w) for w in self.windows)
        groups = tuple(str(g) for g in self.groups)
        variables = tuple(str(v) for v in self.variables)
        if not windows or any(w < 2 for w in windows) or len(set(windows)) != len(windows):
            raise FeatureConfigError(f"feature windows must be distinct integers >= 2, got {list(self.windows)}")
        bad = [g for g in groups if g not in GROUPS]
        if bad or not groups or len(set(groups)) != len(groups):
            raise FeatureConfigError(f"feature groups must be distinct names among {list(GROUPS)}, got {list(groups)}")
        unknown = [v for v in variables if v not in schema.VARIABLE_BY_NAME]
        if unknown or not variables or len(set(variables)) != len(variables):
            raise FeatureConfigError(f"feature variables must be distinct 3W variables, got {list(variables)}")
        object.__setattr__(self, "windows", windows)
        object.__setattr__(self, "groups", groups)
        object.__setattr__(self, "variables", variables)

    @property
    def max_window(self) -> int:
        return max(self.windows)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": FEATURES_VERSION,
            "windows": list(self.windows),
            "groups": list(self.groups),
            "variables": list(self.variables),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureConfig:
        version = d.get("version", FEATURES_VERSION)
        if version != FEATURES_VERSION:
            raise FeatureConfigError(f"feature config version {version} is not supported (code: {FEATURES_VERSION})")
        extra = set(d) - {"version", "windows", "groups", "variables"}
        if extra:
            raise FeatureConfigError(f"unknown feature config fields: {sorted(extra)}")
        defaults = cls()
        return cls(
            windows=tuple(d.get("windows", defaults.windows)),
            groups=tuple(d.get("groups", defaults.groups)),
            variables=tuple(d.get("variables", defaults.variables)),
        )


def _is_categorical(var: str) -> bool:
    return var in schema.CATEGORICAL_VARIABLES


def _columns(config: FeatureConfig) -> list[tuple[str, int, str, int | None]]:
    """(name, variable index, feature kind, window or None) per output column, in output order."""
    cols: list[tuple[str, int, str, int | None]] = []
    for j, v in enumerate(config.variables):
        if _is_categorical(v):
            kinds = {"level": ["value"], "trend": ["changed"], "masks": ["missing"]}
        else:
            kinds = {"level": ["z"], "spread": ["std_rel", "range_rel"], "trend": ["trend"],
                     "masks": ["frozen", "missing"]}
        for g in config.groups:
            for kind in kinds.get(g, []):
                if kind in ("value", "missing"):
                    cols.append((f"{v}__{kind}", j, kind, None))
                else:
                    cols += [(f"{v}__{kind}_{w}", j, kind, w) for w in config.windows]
    return cols


def feature_names(config: FeatureConfig) -> list[str]:
    """Feature column names, in output order (per variable, per group, per window)."""
    return [c[0] for c in _columns(config)]


def compiled_engine() -> bool:
    """True when the compiled kernels (numba) run: the default when numba imports.

    ``PETROSTREAM_ENGINE=numpy`` forces the numpy reference implementation; both give the same features
    (see feature_kernel).
    """
    want = os.environ.get("PETROSTREAM_ENGINE", "numba").strip().lower()
    if want not in ("numba", "numpy"):
        raise FeatureConfigError(f"PETROSTREAM_ENGINE must be numba or numpy, got {want!r}")
    return want == "numba" and importlib.util.find_spec("numba") is not None


@functools.lru_cache(maxsize=32)
def _kernel_table(config: FeatureConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For the kernel: (kinds, windows, variables) -> output row of that feature (-1: not asked for), where
    the transcendental kinds point into the kernel's float64 ``aux`` columns instead (relative spreads, then
    trends); plus the output columns of the spreads and of the trends, in aux order."""
    from petrostream import feature_kernel as fk

    kinds = {"z": fk.Z, "std_rel": fk.STD_REL, "range_rel": fk.RANGE_REL, "trend": fk.TREND, "frozen": fk.FROZEN,
             "changed": fk.CHANGED, "value": fk.VALUE, "missing": fk.MISSING}
    table = np.full((fk.N_KINDS, len(config.windows), len(config.variables)), -1, dtype=np.int64)
    cols = _columns(config)
    spread_rows = [i for i, (_, _, kind, _) in enumerate(cols) if kind in ("std_rel", "range_rel")]
    trend_rows = [i for i, (_, _, kind, _) in enumerate(cols) if kind == "trend"]
    aux_of = {i: a for a, i in enumerate(spread_rows + trend_rows)}  # spreads first, then trends
    for i, (_, j, kind, w) in enumerate(cols):
        table[kinds[kind], 0 if w is None else config.windows.index(w), j] = aux_of.get(i, i)
    return table, np.array(spread_rows, dtype=np.int64), np.array(trend_rows, dtype=np.int64)


_KERNEL_CONSTS = np.array([REL_FLOOR, ABS_FLOOR, Z_CLIP, 10**LOG_REL_MIN, 10**LOG_REL_MAX, MISSING_VALVE])


def _features(X: np.ndarray, lengths: np.ndarray, pos0: np.ndarray, out_from: np.ndarray, config: FeatureConfig,
              ref: np.ndarray) -> np.ndarray:
    """Features (F, rows) float32 of rows ``out_from[s]..`` of each segment ``s`` of X (see ``_window_features``)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    out_from = np.asarray(out_from, dtype=np.int64)
    if not compiled_engine():
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)
        sel = np.concatenate([np.arange(a + f, a + n) for a, f, n in zip(starts, out_from, lengths, strict=True)])
        return _window_features(X, lengths, np.asarray(pos0), sel.astype(np.int64), config, ref)
    from petrostream import feature_kernel

    table, spread_cols, trend_cols = _kernel_table(config)
    m = int((lengths - out_from).sum())
    out = np.empty((len(feature_names(config)), m), dtype=np.float32)
    aux = np.empty((len(spread_cols) + len(trend_cols), m))
    feature_kernel.window_features(np.ascontiguousarray(X.T, dtype=np.float64), lengths,
                                   np.asarray(pos0, dtype=np.int64), out_from,
                                   np.ascontiguousarray(ref, dtype=np.float64).reshape(len(lengths), X.shape[1]),
                                   np.asarray(config.windows, dtype=np.int64), table, _KERNEL_CONSTS, out, aux)
    S = len(spread_cols)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        if S:  # relative spreads: log10 of the clipped ratio
            out[spread_cols] = np.log10(aux[:S], out=aux[:S])
        if len(trend_cols):  # trends: asinh of the relative change
            trend = aux[S:]
            np.divide(trend, TREND_SCALE, out=trend)
            np.arcsinh(trend, out=trend)
            out[trend_cols] = np.clip(trend, -TREND_CLIP, TREND_CLIP, out=trend)
    return out


# --------------------------------------------------------------------------------------------------------------------
# Raw values


def raw_matrix(frame: pd.DataFrame, config: FeatureConfig) -> np.ndarray:
    """(n, V) float64 of the configured variables: absent -> NaN, non-numeric -> NaN, dead gauge -> NaN.

    Variable-major in memory (Fortran order): columns are filled whole, and the feature kernel reads them."""
    n = len(frame)
    out = np.full((len(config.variables), n), np.nan).T
    for j, v in enumerate(config.variables):
        if v not in frame.columns:
            continue
        col = frame[v]
        if col.dtype != np.float64:
            col = pd.to_numeric(col, errors="coerce")
        out[:, j] = col.to_numpy(dtype=np.float64, na_value=np.nan)
        if v in schema.DEAD_GAUGE_ZERO:
            out[out[:, j] == 0.0, j] = np.nan
    out[~np.isfinite(out)] = np.nan
    return out


# --------------------------------------------------------------------------------------------------------------------
# Block-aligned window aggregates

CHUNK_ROWS = 32_768  # rows per vectorised pass (keeps temporaries cache-sized)


class _Layout:
    """Segments of consecutive rows, each the run of one instance starting at position ``pos0`` in it.

    ``window`` aggregates over trailing windows of ``B`` rows with blocks aligned on positions that are
    multiples of ``B`` (padding fills each segment's first and last block).
    """

    def __init__(self, lengths: np.ndarray, pos0: np.ndarray):
        self.lengths, self.pos0 = lengths, pos0
        self.n = int(lengths.sum())
        self.starts = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)
        self.within = np.arange(self.n) - np.repeat(self.starts, lengths)
        self.pos = np.repeat(pos0, lengths) + self.within

    def count(self, valid: np.ndarray, B: int, sel: np.ndarray) -> np.ndarray:
        """Exact (integer) count of valid rows in the trailing window of ``B`` rows, truncated at the segment start."""
        c = np.zeros((self.n + 1, valid.shape[1]), dtype=np.int64)
        np.cumsum(valid, axis=0, out=c[1:])
        back = np.minimum(B, self.within[sel] + 1)
        return (c[sel + 1] - c[sel + 1 - back]).astype(np.float64)

    def window(self, values: np.ndarray, fill: float, ufunc: np.ufunc, B: int, sel: np.ndarray) -> np.ndarray:
        """ufunc-aggregate of ``values`` (n, K) over the trailing window of ``B`` rows, for rows ``sel``."""
        K = values.shape[1]
        front = self.pos0 % B
        padded = -(-(front + self.lengths) // B) * B
        total = int(padded.sum())
        single = len(self.lengths) == 1
        if single:
            f = int(front[0])
            buf = np.empty((total, K))
            buf[:f] = fill
            buf[f : f + self.n] = values
            buf[f + self.n :] = fill
        else:
            offsets = np.concatenate(([0], np.cumsum(padded)[:-1]))
            dst = np.repeat(offsets + front, self.lengths) + self.within
            buf = np.full((total, K), fill)
            buf[dst] = values
        blocks = buf.reshape(-1, B, K)
        prefix = ufunc.accumulate(blocks, axis=1).reshape(total, K)
        suffix = np.empty_like(buf)  # suffix[i] = aggregate from i to the end of its block
        ufunc.accumulate(blocks[:, ::-1], axis=1, out=suffix.reshape(-1, B, K)[:, ::-1])
        p = self.pos[sel]
        use = (p >= B) & (p % B != B - 1)  # the window reaches into the previous block
        m = len(sel)
        if single and m and sel[-1] - sel[0] + 1 == m:  # contiguous rows: slices, no gathers
            a = f + int(sel[0])
            pre = prefix[a : a + m]
            lo = a - B + 1
            k0 = min(m, max(0, -lo))
            left = np.empty((m, K))
            left[:k0] = fill
            left[k0:] = suffix[lo + k0 : lo + m]
        else:
            d = (f + sel) if single else dst[sel]
            pre = prefix[d]
            left = suffix[np.maximum(d - B + 1, 0)]
        left[~use] = fill
        return ufunc(pre, left, out=left)


def _first_valid(X: np.ndarray) -> np.ndarray:
    """First non-NaN value of each column (0 where none): the instance's reference level."""
    if len(X) == 0:
        return np.zeros(X.shape[1])
    valid = ~np.isnan(X)
    first = np.argmax(valid, axis=0)
    return np.where(valid.any(axis=0), X[first, np.arange(X.shape[1])], 0.0)


def _window_features(X: np.ndarray, lengths: np.ndarray, pos0: np.ndarray, sel: np.ndarray,
                     config: FeatureConfig, ref: np.ndarray) -> np.ndarray:
    """Features (F, len(sel)) float32 for rows ``sel`` of X (n, V), given the segments of X.

    Row ``t`` must have its trailing ``max_window - 1`` rows in X (or its segment must start at pos0 0).
    ``ref`` (segments, V): each segment's instance reference level (``_first_valid`` of the instance);
    sums are taken on values minus it, so variances of large, quiet signals keep their precision.
    """
    V = X.shape[1]
    lay = _Layout(lengths, pos0)
    xs = X[sel]
    valid = ~np.isnan(X)
    R = np.repeat(ref, lengths, axis=0)
    x0 = np.where(valid, X - R, 0.0)  # centred on the instance reference, 0 where missing
    ref_s = R[sel]
    cat = np.array([_is_categorical(v) for v in config.variables])
    groups = set(config.groups)
    need_stats = not cat.all() and bool(groups & {"level", "spread", "trend"})
    per_w: dict[int, dict[str, np.ndarray]] = {}
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        for w in config.windows:
            n = lay.count(valid, w, sel)
            f: dict[str, np.ndarray] = {}
            ext = lay.window(np.hstack([np.where(valid, X, -np.inf), np.where(valid, -X, -np.inf)]),
                             -np.inf, np.maximum, w, sel)
            hi, lo = ext[:, :V], -ext[:, V:]
            f["changed"] = ((n >= 2) & (hi != lo)).astype(np.float64)
            f["frozen"] = ((n >= max(2, w // 2)) & (hi == lo)).astype(np.float64)
            if need_stats:
                sums = lay.window(np.hstack([x0, x0 * x0]), 0.0, np.add, w, sel)
                s, q = sums[:, :V], sums[:, V:]
                inv_n = 1.0 / np.maximum(n, 1.0)
                mean_c = s * inv_n  # mean minus the reference
                level = np.maximum(np.abs(mean_c + ref_s), ABS_FLOOR)
                std = np.sqrt(np.maximum(q * inv_n - mean_c * mean_c, 0.0))
                std[hi == lo] = 0.0  # exactly constant window: no rounding residue
                if "level" in groups:
                    std_eff = np.maximum(std, REL_FLOOR * level)
                    z = np.clip((x0[sel] - mean_c) / std_eff, -Z_CLIP, Z_CLIP)
                    z[(n < 2) | np.isnan(xs) | (hi == lo)] = 0.0  # constant window: the value is the mean
                    f["z"] = z
                if "spread" in groups:
                    f["std_rel"] = _log_rel(std / level, n)
                    f["range_rel"] = _log_rel((hi - lo) / level, n)
                if "trend" in groups:
                    f["trend"] = _trend(lay, x0, valid, w, sel, level)
            per_w[w] = f
    cols = _columns(config)
    out = np.empty((len(cols), len(sel)), dtype=np.float32)
    missing = np.isnan(xs)
    for i, (_, j, kind, cw) in enumerate(cols):
        if kind == "value":
            out[i] = np.where(missing[:, j], MISSING_VALVE, xs[:, j])
        elif kind == "missing":
            out[i] = missing[:, j]
        else:
            assert cw is not None  # every kind but value/missing is computed per window (see _columns)
            out[i] = per_w[cw][kind][:, j]
    return out


def _trend(lay: _Layout, x0: np.ndarray, valid: np.ndarray, w: int, sel: np.ndarray,
           level: np.ndarray) -> np.ndarray:
    """asinh of the relative change between the mean of the last h = w//2 rows and of the h rows before."""
    h = w // 2
    allrows = np.arange(lay.n)
    s_h = lay.window(x0, 0.0, np.add, h, allrows)
    n_h = lay.count(valid, h, allrows)
    has_old = lay.within[sel] >= h  # the previous half lies inside the segment (and the pos0 alignment holds)
    old = np.where(has_old, sel - h, sel)
    m_new = s_h[sel] / np.maximum(n_h[sel], 1.0)
    m_old = s_h[old] / np.maximum(n_h[old], 1.0)
    d = (m_new - m_old) / level
    trend = np.clip(np.arcsinh(d / TREND_SCALE), -TREND_CLIP, TREND_CLIP)
    ok = (n_h[sel] > 0) & (n_h[old] > 0) & has_old[:, None]
    return np.where(ok, trend, 0.0)


def _log_rel(ratio: np.ndarray, n: np.ndarray) -> np.ndarray:
    r = np.log10(np.clip(np.nan_to_num(ratio, nan=0.0, posinf=10**LOG_REL_MAX), 10**LOG_REL_MIN, 10**LOG_REL_MAX))
    r[n < 2] = LOG_REL_MIN
    return r


def instance_codes(frame: pd.DataFrame, by: str) -> np.ndarray:
    """Instance code per row (first-appearance order; a missing id is an instance of its own; no column: one)."""
    if by not in frame.columns:
        return np.zeros(len(frame), dtype=np.int64)
    return pd.factorize(frame[by], use_na_sentinel=False)[0]


def _segments(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(starts, lengths) of runs of equal consecutive codes."""
    if len(codes) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    lengths = np.diff(np.r_[starts, len(codes)])
    return starts, lengths


def _batch_features(X: np.ndarray, lengths: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """Features (F, n) of X whose segments each hold a whole instance from its first row, in chunks.

    Each chunk re-reads the ``max_window - 1`` rows before it as context, exactly like a stream does,
    so chunking changes neither the values nor their bits.
    """
    ctx = config.max_window - 1
    out = np.empty((len(feature_names(config)), len(X)), dtype=np.float32)
    pieces: list[tuple[int, int, int, int]] = []  # (context start, first output row, end, pos0 of context start)
    seg_of: list[int] = []  # segment of each piece
    refs: list[np.ndarray] = []
    seg_start = 0
    for k, L in enumerate(lengths.tolist()):
        refs.append(_first_valid(X[seg_start : seg_start + L]))
        for a in range(seg_start, seg_start + L, CHUNK_ROWS):
            c = max(seg_start, a - ctx)
            pieces.append((c, a, min(a + CHUNK_ROWS, seg_start + L), c - seg_start))
            seg_of.append(k)
        seg_start += L
    i = 0
    while i < len(pieces):
        # small pieces share a pass; a large one goes alone (contiguous fast path)
        group: list[tuple[int, int, int, int]] = []
        rows = 0
        while i < len(pieces) and (not group or (rows + pieces[i][2] - pieces[i][0] <= CHUNK_ROWS // 4
                                                 and pieces[i][2] - pieces[i][0] <= CHUNK_ROWS // 16)):
            group.append(pieces[i])
            rows += pieces[i][2] - pieces[i][0]
            i += 1
        Xg = np.vstack([X[c:b] for c, _, b, _ in group]) if len(group) > 1 else X[group[0][0] : group[0][2]]
        res = _features(Xg, np.array([b - c for c, _, b, _ in group]), np.array([p for *_, p in group]),
                        np.array([a - c for c, a, _, _ in group]), config,
                        np.array([refs[k] for k in seg_of[i - len(group) : i]]))
        out[:, group[0][1] : group[-1][2]] = res  # pieces cover the rows in order
    return out


def _frame(out: np.ndarray, index: pd.Index, names: list[str]) -> pd.DataFrame:
    """``out`` (rows, F), feature-major in memory (the transpose of an (F, rows) array): no copy."""
    return pd.DataFrame(out, index=index, columns=names, copy=False)


# --------------------------------------------------------------------------------------------------------------------
# Public API


def compute_features(frame: pd.DataFrame, config: FeatureConfig | None = None) -> pd.DataFrame:
    """Features of ONE instance (rows in time order), float32, same index, causal, no NaN."""
    config = config or FeatureConfig()
    X = raw_matrix(frame, config)
    return _frame(_batch_features(X, np.array([len(X)]), config).T, frame.index, feature_names(config))


def feature_matrix(frame: pd.DataFrame, config: FeatureConfig | None = None, by: str = KEY) -> np.ndarray:
    """(n, F) float32 features of several instances at once (vectorised); see ``compute_features_grouped``."""
    config = config or FeatureConfig()
    codes = instance_codes(frame, by)
    _, lengths = _segments(codes)
    return _batch_features(raw_matrix(frame, config), lengths, config).T


def compute_features_grouped(frame: pd.DataFrame, config: FeatureConfig | None = None, by: str = KEY) -> pd.DataFrame:
    """Features of several instances at once (vectorised): each run of equal ``by`` values is one instance.

    Rows must be grouped by instance and in time order inside each instance (as ``AnomalyModel.predict``
    arranges them); without a ``by`` column the frame is one instance. Equal to ``compute_features`` per
    instance, row for row.
    """
    config = config or FeatureConfig()
    return pd.DataFrame(feature_matrix(frame, config, by), index=frame.index, columns=feature_names(config), copy=False)


class StreamingFeatures:
    """Incremental features over a stream, per key (instance id), equal to ``compute_features`` row for row.

    Keeps, per key, the last ``max_window - 1`` raw rows and the number of rows seen.
    """

    def __init__(self, config: FeatureConfig | None = None):
        self.config = config or FeatureConfig()
        self.names = feature_names(self.config)
        self._tail_len = self.config.max_window - 1
        self._tails: dict[Hashable, np.ndarray] = {}
        self._seen: dict[Hashable, int] = {}
        self._refs: dict[Hashable, np.ndarray] = {}  # first valid value per variable (NaN until seen)

    def update(self, key: Hashable, frame: pd.DataFrame) -> pd.DataFrame:
        """Features of the new rows of ``key`` (rows in time order), same index as ``frame``."""
        return _frame(self._update([key], [raw_matrix(frame, self.config)]).T, frame.index, self.names)

    def update_frame(self, frame: pd.DataFrame, by: str = KEY) -> pd.DataFrame:
        """Features of a micro-batch holding rows of several keys (vectorised across keys), same index.

        Rows of one key must be in time order; keys may interleave.
        """
        return _frame(self.update_matrix(frame, by), frame.index, self.names)

    def update_matrix(self, frame: pd.DataFrame, by: str = KEY) -> np.ndarray:
        """``update_frame`` as a (rows, F) float32 matrix (what a detector takes; no DataFrame on the hot path).

        Feature-major in memory (Fortran order): sklearn's trees walk all rows one tree at a time, reading a
        feature's column at each node, which is ~2x faster from contiguous columns than from rows.
        """
        if len(frame) == 0:
            return np.empty((len(self.names), 0), dtype=np.float32).T
        codes, uniques = pd.factorize(frame[by], use_na_sentinel=False)
        grouped = bool(np.all(codes[1:] >= codes[:-1]))  # first-appearance codes: grouped rows never go down
        order = None if grouped else np.argsort(codes, kind="stable")
        X = raw_matrix(frame, self.config)
        if order is not None:
            X, codes = X[order], codes[order]
        starts, lengths = _segments(codes)
        keys = [uniques[codes[s]] for s in starts]
        parts = [X[s : s + m] for s, m in zip(starts, lengths, strict=True)]
        out_sorted = self._update(keys, parts)
        if order is None:
            return out_sorted.T
        out = np.empty_like(out_sorted)
        out[:, order] = out_sorted
        return out.T

    def _update(self, keys: list[Hashable], parts: list[np.ndarray]) -> np.ndarray:
        """Features of ``parts`` (new raw rows per key, time order), each key's kept tail in front: all of them
        assembled in one variable-major buffer, the layout the kernel reads (no intermediate stacking)."""
        V = len(self.config.variables)
        tails = [self._tails.get(key) for key in keys]
        sizes = [len(new) + (0 if tail is None else len(tail)) for tail, new in zip(tails, parts, strict=True)]
        total = sum(sizes)
        if total == 0:
            return np.empty((len(self.names), 0), dtype=np.float32)
        X = np.empty((V, total)).T
        pos0, out_from, refs, offset = [], [], [], 0
        for key, new, tail, size in zip(keys, parts, tails, sizes, strict=True):
            ref = self._refs.get(key)
            if ref is None or np.isnan(ref).any():
                first = _first_valid(new)
                seen_any = ~np.isnan(new).all(axis=0) if len(new) else np.zeros(V, dtype=bool)
                ref = np.full(V, np.nan) if ref is None else ref
                ref = np.where(np.isnan(ref) & seen_any, first, ref)
                self._refs[key] = ref
            refs.append(np.nan_to_num(ref, nan=0.0))
            kept = 0 if tail is None else len(tail)
            if kept:
                X[offset : offset + kept] = tail
            X[offset + kept : offset + size] = new
            seen = self._seen.get(key, 0)
            pos0.append(seen - kept)
            out_from.append(kept)
            self._tails[key] = X[max(offset, offset + size - self._tail_len) : offset + size].copy()
            self._seen[key] = seen + len(new)
            offset += size
        return _features(X, np.array(sizes), np.array(pos0), np.array(out_from), self.config, np.array(refs))

    def forget(self, key: Hashable) -> None:
        self._tails.pop(key, None)
        self._seen.pop(key, None)
        self._refs.pop(key, None)

    def keys(self) -> list[Hashable]:
        return list(self._seen)

    def rows_seen(self, key: Hashable) -> int:
        return self._seen.get(key, 0)


def feature_frame(frames: Iterable[pd.DataFrame], config: FeatureConfig | None = None) -> pd.DataFrame:
    """Concatenated features of several single-instance frames (convenience for training)."""
    config = config or FeatureConfig()
    parts = [compute_features(f, config) for f in frames]
    if not parts:
        return pd.DataFrame(columns=feature_names(config), dtype=np.float32)
    return pd.concat(parts, ignore_index=True)


def warm_up() -> None:
    """Compile the feature kernel now (numba caches it on disk): images run this at build time."""
    rng = np.random.default_rng(0)
    feature_matrix(pd.DataFrame({v: rng.normal(size=400) for v in schema.V1_VARIABLES}))
