"""SYNTHETIC 3W-layout data for machines without the real dataset (demo, CI, smoke tests).

Everything written here is **synthetic**: files are named ``SYNTHETIC_<nnnnn>.parquet`` (source
SYNTHETIC for the loader) and the destination gets a ``SYNTHETIC.md`` saying so. The signals are a
plausible caricature of an offshore gas-lifted well (pressures in Pa, temperatures in degC, gas-lift
flow in m3/s, valve states in {0, 0.5, 1}) with hand-made event signatures; they are *not* physics
and must never be mixed with or reported as real 3W data.

Layout and schema match 3W v2: ``<class>/SYNTHETIC_<nnnnn>.parquet``, ``timestamp`` index
(``datetime64[ns]``, 1 Hz), float64 variables, nullable ``Int64`` ``class``, pyarrow + brotli.
The same seed gives byte-identical files (no wall-clock time is written anywhere).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from petrostream import schema
from petrostream.errors import UserError

SOURCE = "SYNTHETIC"
VALVES: tuple[str, ...] = ("ESTADO-DHSV", "ESTADO-M1", "ESTADO-W1", "ESTADO-SDV-P")
COLUMNS: tuple[str, ...] = (*schema.V1_VARIABLES, *VALVES)
DEFAULT_CLASSES: tuple[int, ...] = (0, 2, 3, 4, 8)
BASE_TIME = pd.Timestamp("2024-01-01 00:00:00")
MARKER = "SYNTHETIC.md"


@dataclass(frozen=True)
class Well:
    """Operating point of one synthetic well (steady values of the v1 variables) and its sensor quirks."""

    name: str
    p_pdg: float  # Pa
    p_tpt: float  # Pa
    t_tpt: float  # degC
    p_mon_ckp: float  # Pa
    t_jus_ckp: float  # degC
    p_jus_ckgl: float  # Pa
    qgl: float  # m3/s
    quirk: str = ""  # "" | "no-ckgl" (P-JUS-CKGL all NaN) | "dead-pdg" (P-PDG reads 0 Pa, QGL frozen)


WELLS: tuple[Well, ...] = (
    Well("SYN-WELL-A", 2.38e7, 1.58e7, 112.0, 6.9e6, 68.0, 4.40e6, 1.38),
    Well("SYN-WELL-B", 2.62e7, 1.43e7, 96.0, 4.6e6, 52.0, 4.15e6, 1.21),
    Well("SYN-WELL-C", 2.21e7, 1.66e7, 118.0, 7.4e6, 74.0, 4.70e6, 1.49, quirk="no-ckgl"),
    Well("SYN-WELL-D", 2.85e7, 1.31e7, 61.0, 2.9e6, 38.0, 4.05e6, 1.12, quirk="dead-pdg"),
)


@dataclass(frozen=True)
class SynthFile:
    path: Path
    event_class: int
    well: str
    rows: int
    labels: dict[str, int]  # label (or "NA") -> rows


# --------------------------------------------------------------------------------------------
# signal building blocks (vectorised)


def _smooth_noise(rng: np.random.Generator, n: int, knot_s: float) -> np.ndarray:
    """Unit-variance-ish slow random process: random knots every ``knot_s`` seconds, linearly interpolated."""
    k = int(n // knot_s) + 2
    knots = rng.standard_normal(k)
    return np.interp(np.arange(n) / knot_s, np.arange(k), knots)


def _ramp(t: np.ndarray, start: float, length: float) -> np.ndarray:
    """0 before start, smoothstep to 1 over length seconds, 1 after."""
    x = np.clip((t - start) / max(length, 1.0), 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _approach(t: np.ndarray, start: float, tau: float) -> np.ndarray:
    """0 before start, then 1 - exp(-(t - start) / tau)."""
    return np.where(t < start, 0.0, 1.0 - np.exp(-np.clip(t - start, 0, None) / tau))


Effects = dict[str, np.ndarray]


def _base(well: Well, t: np.ndarray, rng: np.random.Generator) -> Effects:
    """Steady operation: operating point + slow drift + sensor noise."""
    n = len(t)
    rel = {  # (drift, white noise) as a fraction of the value
        "P-PDG": (0.002, 0.0004),
        "P-TPT": (0.004, 0.0008),
        "P-MON-CKP": (0.008, 0.002),
        "P-JUS-CKGL": (0.004, 0.001),
        "QGL": (0.01, 0.003),
    }
    ops = {"P-PDG": well.p_pdg, "P-TPT": well.p_tpt, "P-MON-CKP": well.p_mon_ckp,
           "P-JUS-CKGL": well.p_jus_ckgl, "QGL": well.qgl}
    out: Effects = {}
    for name, value in ops.items():
        drift, white = rel[name]
        out[name] = value * (1 + drift * _smooth_noise(rng, n, 600.0) + white * rng.standard_normal(n))
    out["T-TPT"] = well.t_tpt + 0.3 * _smooth_noise(rng, n, 900.0) + 0.02 * rng.standard_normal(n)
    out["T-JUS-CKP"] = well.t_jus_ckp + 0.6 * _smooth_noise(rng, n, 600.0) + 0.05 * rng.standard_normal(n)
    return out


def _labels(n: int, spans: Iterable[tuple[int, int, int]]) -> np.ndarray:
    """Label array (int64, -1 = unlabelled) from (start, end, label) spans."""
    lab = np.zeros(n, dtype=np.int64)
    for a, b, value in spans:
        lab[a:b] = value
    return lab


# --------------------------------------------------------------------------------------------
# events: each returns the label array after modifying the signals in place


def _normal(s: Effects, t: np.ndarray, n: int, well: Well, rng: np.random.Generator) -> np.ndarray:
    # A planned, small choke move somewhere: normal operation is not a flat line.
    at = rng.uniform(0.2, 0.8) * n
    step = rng.choice([-1, 1]) * rng.uniform(0.02, 0.05)
    r = _ramp(t, at, 120.0)
    s["P-MON-CKP"] *= 1 + step * r
    s["P-TPT"] *= 1 + 0.3 * step * r
    s["T-JUS-CKP"] += 8 * step * r
    return _labels(n, [])


def _dhsv_closure(s: Effects, t: np.ndarray, n: int, well: Well, rng: np.random.Generator) -> np.ndarray:
    onset = int(rng.uniform(0.25, 0.4) * n)
    trans = int(rng.uniform(0.12, 0.2) * n)
    tau = rng.uniform(150, 300)
    s["P-PDG"] *= 1 + rng.uniform(0.05, 0.1) * _approach(t, onset, 2 * tau)  # builds up below the valve
    s["P-TPT"] *= 1 - rng.uniform(0.3, 0.5) * _approach(t, onset, tau)  # depressurises above it
    s["P-MON-CKP"] *= 1 - rng.uniform(0.5, 0.7) * _approach(t, onset, 0.7 * tau)
    s["P-JUS-CKGL"] *= 1 + 0.03 * _approach(t, onset, tau)
    s["QGL"] *= 1 - 0.1 * _approach(t, onset, tau)
    s["T-TPT"] -= (s["T-TPT"] - 20) * 0.4 * _approach(t, onset, 1800)  # no flow: cools to the sea
    s["T-JUS-CKP"] -= (s["T-JUS-CKP"] - 20) * 0.5 * _approach(t, onset, 1200)
    gap = int(rng.integers(10, 60))  # the expert left a few seconds around the onset unlabelled
    return _labels(n, [(onset, onset + trans, 102), (onset + trans, n, 2), (onset - gap, onset, -1)])


def _severe_slugging(s: Effects, t: np.ndarray, n: int, well: Well, rng: np.random.Generator) -> np.ndarray:
    onset = int(rng.uniform(0.2, 0.35) * n)
    period = rng.uniform(700, 1300)
    phase = np.mod(t - onset, period) / period
    build = 0.8  # slow liquid build-up in the riser base, fast blow-down
    saw = np.where(phase < build, phase / build, 1 - (phase - build) / (1 - build))
    blow = np.exp(-(((phase - 0.9) / 0.05) ** 2))
    on = _ramp(t, onset, period)  # grows in over the first cycle
    s["P-TPT"] *= 1 + 0.15 * on * (saw - 0.5)
    s["P-PDG"] *= 1 + 0.06 * on * (saw - 0.5)
    s["P-MON-CKP"] *= 1 + on * (0.45 * blow - 0.1)
    s["T-JUS-CKP"] += on * (4.0 * blow - 1.0)
    s["QGL"] *= 1 + 0.05 * on * np.sin(2 * np.pi * phase)
    return _labels(n, [(onset, n, 3)])


def _flow_instability(s: Effects, t: np.ndarray, n: int, well: Well, rng: np.random.Generator) -> np.ndarray:
    onset = int(rng.uniform(0.25, 0.4) * n)
    on = _ramp(t, onset, 300.0)
    wave = np.zeros(n)
    for _ in range(3):  # quasi-periodic: a few incommensurate periods, randomly modulated
        wave += np.sin(2 * np.pi * t / rng.uniform(60, 300) + rng.uniform(0, 2 * np.pi))
    wave *= 0.5 * (1 + 0.5 * _smooth_noise(rng, n, 400.0)) / 3
    s["P-MON-CKP"] *= 1 + 0.16 * on * wave
    s["P-TPT"] *= 1 + 0.06 * on * wave
    s["P-PDG"] *= 1 + 0.015 * on * wave
    s["T-JUS-CKP"] += 3.0 * on * wave
    return _labels(n, [(onset, n, 4)])


def _hydrate_production(s: Effects, t: np.ndarray, n: int, well: Well, rng: np.random.Generator) -> np.ndarray:
    onset = int(rng.uniform(0.2, 0.3) * n)
    trans = int(rng.uniform(0.35, 0.45) * n)
    r = _ramp(t, onset, trans)  # the plug grows, then stays
    s["P-TPT"] *= 1 + rng.uniform(0.2, 0.3) * r  # upstream of the plug
    s["P-PDG"] *= 1 + rng.uniform(0.05, 0.08) * r
    s["P-MON-CKP"] *= 1 - rng.uniform(0.5, 0.7) * r  # downstream of the plug
    s["T-TPT"] -= 6.0 * r
    s["T-JUS-CKP"] -= (s["T-JUS-CKP"] - 20) * 0.45 * r
    gap = int(rng.integers(10, 60))
    return _labels(n, [(onset, onset + trans, 108), (onset + trans, n, 8), (onset + trans - gap, onset + trans, -1)])


EVENTS: dict[int, Callable[..., np.ndarray]] = {
    0: _normal,
    2: _dhsv_closure,
    3: _severe_slugging,
    4: _flow_instability,
    8: _hydrate_production,
}


# --------------------------------------------------------------------------------------------


def make_instance(
    event_class: int, well: Well, rows: int, start: pd.Timestamp, rng: np.random.Generator
) -> pd.DataFrame:
    """One synthetic instance: a normal stretch, then (for events) the transient and the established event."""
    if event_class not in EVENTS:
        raise UserError(f"synthetic class {event_class} not available (choose from {sorted(EVENTS)})")
    t = np.arange(rows, dtype=np.float64)
    sig = _base(well, t, rng)
    lab = EVENTS[event_class](sig, t, rows, well, rng)
    # sensor quirks seen in 3W: dropouts, a missing gauge, a dead gauge, a frozen reading
    for _ in range(int(rng.integers(0, 3))):
        var = schema.V1_VARIABLES[int(rng.integers(len(schema.V1_VARIABLES)))]
        a = int(rng.integers(0, rows - 60))
        sig[var][a : a + int(rng.integers(5, 60))] = np.nan
    if well.quirk == "no-ckgl":
        sig["P-JUS-CKGL"][:] = np.nan
    elif well.quirk == "dead-pdg":
        sig["P-PDG"][:] = 0.0
        sig["QGL"][:] = round(well.qgl, 4)
    data: dict[str, np.ndarray] = {}
    for var in schema.V1_VARIABLES:
        kind = schema.VARIABLE_BY_NAME[var].kind
        digits = 0 if kind == "pressure" else 6 if kind == "flow" else 4  # 3W-like resolution
        data[var] = np.round(sig[var], digits)
    for v in VALVES:
        data[v] = np.ones(rows)  # valves open; a spurious DHSV closure is by definition not commanded
    index = pd.DatetimeIndex(start + pd.to_timedelta(t.astype(np.int64), unit="s"), name=schema.TIMESTAMP)
    df = pd.DataFrame(data, index=index, columns=list(COLUMNS)).astype("float64")
    df.index = df.index.astype("datetime64[ns]")
    labels = pd.array(lab, dtype="Int64")
    labels[lab < 0] = pd.NA
    df["class"] = labels
    return df


def synthesize(
    dest: str | Path,
    seed: int = 0,
    instances_per_class: int = 4,
    hours: float = 1.5,
    classes: Iterable[int] = DEFAULT_CLASSES,
) -> list[SynthFile]:
    """Write a SYNTHETIC 3W-layout set under ``dest``; same arguments give byte-identical files."""
    dest = Path(dest)
    classes = sorted(set(classes))
    rows = int(round(hours * 3600))
    if rows < 600:
        raise UserError(f"--hours {hours}: instances need at least 10 minutes (600 rows)")
    if seed < 0:
        raise UserError(f"--seed {seed}: must be >= 0")
    if instances_per_class < 1:
        raise UserError("--instances-per-class must be at least 1")
    for c in classes:
        if c not in EVENTS:
            raise UserError(f"synthetic class {c} not available (choose from {sorted(EVENTS)})")
    _check_dest(dest)
    for old in dest.glob("*/SYNTHETIC_*.parquet"):  # a previous run with other arguments
        old.unlink()
    written: list[SynthFile] = []
    number = 0
    for c in classes:
        for k in range(instances_per_class):
            number += 1
            rng = np.random.default_rng([seed, c, k])
            well = WELLS[(number - 1) % len(WELLS)]
            start = BASE_TIME + pd.Timedelta(days=int(rng.integers(0, 365)), seconds=int(rng.integers(0, 86400)))
            df = make_instance(c, well, rows, start, rng)
            path = dest / str(c) / f"SYNTHETIC_{number:05d}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".parquet.tmp")
            df.to_parquet(tmp, engine="pyarrow", compression="brotli")
            tmp.replace(path)
            counts = df["class"].value_counts(dropna=False)
            labels = {("NA" if pd.isna(k_) else str(int(k_))): int(v) for k_, v in counts.sort_index().items()}
            written.append(SynthFile(path, c, well.name, rows, labels))
    (dest / MARKER).write_text(_marker_text(written, dest, seed, instances_per_class, hours))
    return written


def _check_dest(dest: Path) -> None:
    if dest.exists() and not dest.is_dir():
        raise UserError(f"{dest}: exists and is not a directory")
    if dest.is_dir():
        foreign = [p for p in dest.glob("*/*.parquet") if not p.name.startswith("SYNTHETIC_")]
        if foreign:
            raise UserError(
                f"{dest}: already holds non-synthetic 3W files (e.g. {foreign[0].relative_to(dest)}); "
                "synthetic data must not be mixed with real data, choose another --dest"
            )
    dest.mkdir(parents=True, exist_ok=True)


def _marker_text(files: list[SynthFile], dest: Path, seed: int, k: int, hours: float) -> str:
    h = hashlib.sha256()
    for f in files:
        h.update(f.path.relative_to(dest).as_posix().encode())
        h.update(f.path.read_bytes())
    lines = [
        "# SYNTHETIC DATA - not the Petrobras 3W dataset",
        "",
        "Every file in this folder was **generated** by `petrostream data synth`. It imitates the 3W v2",
        "layout and schema so the pipeline can run on machines without the real data, but the values are",
        "a caricature made of hand-written signal shapes and noise: they describe no real well and must",
        "never be reported, mixed with or mistaken for real 3W data (file names start with `SYNTHETIC_`,",
        "the loader reports their source as SYNTHETIC).",
        "",
        f"* generator arguments: seed {seed}, {k} instance(s) per class, {hours:g} h per instance",
        f"* content sha256 (relative paths + bytes): `{h.hexdigest()}`",
        f"* variables: {', '.join(COLUMNS)} (float64) and `class` (Int64); timestamp index, 1 Hz",
        "* events: 0 normal (with a planned choke move), 2 spurious DHSV closure (transient 102),",
        "  3 severe slugging, 4 flow instability, 8 hydrate in the production line (transient 108);",
        "  every event instance starts with a normal stretch (label 0), a few rows around a transition",
        "  are unlabelled (<NA>), like in 3W",
        "* wells (operating points): "
        + "; ".join(f"{w.name}{' (' + w.quirk + ')' if w.quirk else ''}" for w in WELLS),
        "",
        "| file | class | event | well | rows | labels (label:rows) |",
        "|---|---:|---|---|---:|---|",
    ]
    for f in files:
        labels = " ".join(f"{k_}:{v}" for k_, v in f.labels.items())
        lines.append(
            f"| {f.path.relative_to(dest).as_posix()} | {f.event_class} | {schema.event_name(f.event_class)} "
            f"| {f.well} | {f.rows} | {labels} |"
        )
    return "\n".join(lines) + "\n"
