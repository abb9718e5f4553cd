"""The 3W dataset schema: variables, units, labels and their meaning (3W v2.0.0 conventions)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class Variable:
    name: str
    description: str
    unit: str
    kind: str  # "pressure" | "temperature" | "flow" | "opening" | "valve"

    @property
    def categorical(self) -> bool:
        """Valve states take 0, 0.5 or 1: categorical, never normalised."""
        return self.kind == "valve"

    @property
    def column(self) -> str:
        """Lake/SQL column name (snake case, Athena-safe)."""
        return self.name.lower().replace("-", "_")


def _v(name: str, description: str, unit: str, kind: str) -> Variable:
    return Variable(name, description, unit, kind)


VARIABLES: tuple[Variable, ...] = (
    _v("ABER-CKGL", "Opening of the gas-lift choke", "%", "opening"),
    _v("ABER-CKP", "Opening of the production choke", "%", "opening"),
    _v("ESTADO-DHSV", "State of the downhole safety valve", "state", "valve"),
    _v("ESTADO-M1", "State of the production master valve", "state", "valve"),
    _v("ESTADO-M2", "State of the annulus master valve", "state", "valve"),
    _v("ESTADO-PXO", "State of the pig-crossover valve", "state", "valve"),
    _v("ESTADO-SDV-GL", "State of the gas-lift shutdown valve", "state", "valve"),
    _v("ESTADO-SDV-P", "State of the production shutdown valve", "state", "valve"),
    _v("ESTADO-W1", "State of the production wing valve", "state", "valve"),
    _v("ESTADO-W2", "State of the annulus wing valve", "state", "valve"),
    _v("ESTADO-XO", "State of the crossover valve", "state", "valve"),
    _v("P-ANULAR", "Pressure in the well annulus", "Pa", "pressure"),
    _v("P-JUS-BS", "Downstream pressure of the service pump", "Pa", "pressure"),
    _v("P-JUS-CKGL", "Downstream pressure of the gas-lift choke", "Pa", "pressure"),
    _v("P-JUS-CKP", "Downstream pressure of the production choke", "Pa", "pressure"),
    _v("P-MON-CKGL", "Upstream pressure of the gas-lift choke", "Pa", "pressure"),
    _v("P-MON-CKP", "Upstream pressure of the production choke", "Pa", "pressure"),
    _v("P-MON-SDV-P", "Upstream pressure of the production shutdown valve", "Pa", "pressure"),
    _v("P-PDG", "Pressure at the permanent downhole gauge", "Pa", "pressure"),
    _v("PT-P", "Downstream pressure of the production wing valve", "Pa", "pressure"),
    _v("P-TPT", "Pressure at the temperature and pressure transducer", "Pa", "pressure"),
    _v("QBS", "Flow rate at the service pump", "m3/s", "flow"),
    _v("QGL", "Gas-lift flow rate", "m3/s", "flow"),
    _v("T-JUS-CKP", "Downstream temperature of the production choke", "degC", "temperature"),
    _v("T-MON-CKP", "Upstream temperature of the production choke", "degC", "temperature"),
    _v("T-PDG", "Temperature at the permanent downhole gauge", "degC", "temperature"),
    _v("T-TPT", "Temperature at the temperature and pressure transducer", "degC", "temperature"),
)
VARIABLE_BY_NAME: dict[str, Variable] = {v.name: v for v in VARIABLES}
VARIABLE_NAMES: tuple[str, ...] = tuple(v.name for v in VARIABLES)
# The seven process variables 3W v1 had (the only ones in the shared sample).
V1_VARIABLES: tuple[str, ...] = ("P-PDG", "P-TPT", "T-TPT", "P-MON-CKP", "T-JUS-CKP", "P-JUS-CKGL", "QGL")
CATEGORICAL_VARIABLES: tuple[str, ...] = tuple(v.name for v in VARIABLES if v.categorical)
CONTINUOUS_VARIABLES: tuple[str, ...] = tuple(v.name for v in VARIABLES if not v.categorical)
LABEL_COLUMNS: tuple[str, ...] = ("class", "state")
TIMESTAMP = "timestamp"

# Dead-gauge rule: a downhole pressure of exactly 0 Pa is physically impossible (frozen/faulty gauge).
DEAD_GAUGE_ZERO: tuple[str, ...] = ("P-PDG",)

TRANSIENT_OFFSET = 100
NORMAL = 0

EVENTS: dict[int, tuple[str, str, bool]] = {
    # label: (internal name, description, has transient label)
    0: ("NORMAL", "Normal Operation", False),
    1: ("ABRUPT_INCREASE_OF_BSW", "Abrupt Increase of BSW", True),
    2: ("SPURIOUS_CLOSURE_OF_DHSV", "Spurious Closure of DHSV", True),
    3: ("SEVERE_SLUGGING", "Severe Slugging", False),
    4: ("FLOW_INSTABILITY", "Flow Instability", False),
    5: ("RAPID_PRODUCTIVITY_LOSS", "Rapid Productivity Loss", True),
    6: ("QUICK_RESTRICTION_IN_PCK", "Quick Restriction in PCK", True),
    7: ("SCALING_IN_PCK", "Scaling in PCK", True),
    8: ("HYDRATE_IN_PRODUCTION_LINE", "Hydrate in Production Line", True),
    9: ("HYDRATE_IN_SERVICE_LINE", "Hydrate in Service Line", True),
}
EVENT_CLASSES: tuple[int, ...] = tuple(k for k in EVENTS if k != NORMAL)
TRANSIENT_LABELS: tuple[int, ...] = tuple(TRANSIENT_OFFSET + k for k, e in EVENTS.items() if e[2])
VALID_LABELS: frozenset[int] = frozenset(EVENTS) | frozenset(TRANSIENT_LABELS)
SOURCES: tuple[str, ...] = ("REAL", "SIMULATED", "DRAWN", "SYNTHETIC")


def event_name(label: int) -> str:
    """Human name of a label, transient labels included (e.g. 102 -> 'Spurious Closure of DHSV (transient)')."""
    base = base_class(label)
    if base not in EVENTS:
        return f"unknown ({label})"
    name = EVENTS[base][1]
    return f"{name} (transient)" if label >= TRANSIENT_OFFSET else name


def base_class(label: int) -> int:
    """The event class of a label: 102 -> 2, 4 -> 4."""
    return label - TRANSIENT_OFFSET if label >= TRANSIENT_OFFSET else label


def is_transient(label: int) -> bool:
    return label in TRANSIENT_LABELS


def is_event_label(labels: pd.Series) -> pd.Series:
    """Vectorised: True where a row is an event (1..9 or 101..109); NA where unlabelled."""
    return labels.astype("Int64").ne(NORMAL)


def event_classes(labels: pd.Series) -> pd.Series:
    """Vectorised base class (transients folded into their event), NA preserved."""
    lab = labels.astype("Int64")
    return lab.where(lab < TRANSIENT_OFFSET, lab - TRANSIENT_OFFSET)
