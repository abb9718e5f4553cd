"""The lake's SQL, written once in Athena (Trino/Presto) dialect and shipped as ``*.sql`` files.

Files run in name order, one statement each: ``0x_*`` are the external tables (Athena only; the
DuckDB backend registers the same data instead), ``1x_*``/``2x_*`` the views (run as written on
Athena, translated with sqlglot for DuckDB). Placeholders ``${name}`` are rendered from settings:

    ${database} ${raw_bucket} ${curated_bucket} ${raw_table} ${scored_table} ${events_table}
    ${projection_start} ${stale_minutes} ${max_gap_seconds}

``${dt}`` is NOT a placeholder: it belongs to Athena's ``storage.location.template``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from petrostream.settings import Settings, get_settings

SQL_DIR = Path(__file__).resolve().parent
PROJECTION_START = "2010-01-01"  # first projected dt: 3W real instances start in 2012-2013
STALE_MINUTES = 10  # v_well_status: stale when the last reading is this much older than the lake's latest
MAX_GAP_SECONDS = 60  # v_model_performance: longest gap between readings still counted as operation time
ATHENA_TEMPLATE_VARS = frozenset({"dt"})  # left alone: Athena fills them itself

_PLACEHOLDER = re.compile(r"\$\{(\w+)\}")
_CREATE = re.compile(
    r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?(?P<kind>EXTERNAL\s+TABLE|VIEW)\s+(?:IF\s+NOT\s+EXISTS\s+)?(?P<name>[\w.${}]+)",
    re.IGNORECASE | re.MULTILINE,
)


@dataclass(frozen=True)
class SqlFile:
    path: Path
    kind: str  # "table" | "view"
    name: str  # logical object name (file stem without the order prefix), e.g. "scored_readings"

    @property
    def text(self) -> str:
        return self.path.read_text()


class SqlTemplateError(ValueError):
    pass


@cache
def files() -> tuple[SqlFile, ...]:
    """Every SQL file, in execution order."""
    out = []
    for path in sorted(SQL_DIR.glob("*.sql")):
        m = _CREATE.search(strip_comments(path.read_text()))
        if m is None:
            raise SqlTemplateError(f"{path.name}: no CREATE EXTERNAL TABLE / CREATE VIEW statement")
        kind = "view" if m["kind"].upper() == "VIEW" else "table"
        out.append(SqlFile(path, kind, path.stem.split("_", 1)[1]))
    return tuple(out)


def view_names() -> list[str]:
    return [f.name for f in files() if f.kind == "view"]


def table_files() -> list[SqlFile]:
    return [f for f in files() if f.kind == "table"]


def view_files() -> list[SqlFile]:
    return [f for f in files() if f.kind == "view"]


def params(settings: Settings | None = None, **overrides: object) -> dict[str, str]:
    s = settings or get_settings()
    p: dict[str, object] = {
        "database": s.glue_database,
        "raw_bucket": s.raw_bucket,
        "curated_bucket": s.curated_bucket,
        "raw_table": s.raw_table,
        "scored_table": s.scored_table,
        "events_table": s.events_table,
        "projection_start": PROJECTION_START,
        "stale_minutes": STALE_MINUTES,
        "max_gap_seconds": MAX_GAP_SECONDS,
    }
    p.update(overrides)
    return {k: str(v) for k, v in p.items()}


def render(text: str, values: dict[str, str]) -> str:
    """Fill ``${name}`` placeholders; unknown names fail loudly (``${dt}`` stays for Athena)."""

    def sub(m: re.Match) -> str:
        key = m.group(1)
        if key in values:
            return values[key]
        if key in ATHENA_TEMPLATE_VARS:
            return m.group(0)
        raise SqlTemplateError(f"unknown SQL placeholder ${{{key}}}")

    return _PLACEHOLDER.sub(sub, text)


def strip_comments(text: str) -> str:
    """Drop whole-line ``--`` comments and surrounding blank lines (Athena DDL dislikes leading comments)."""
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("--")]
    return "\n".join(lines).strip().rstrip(";").strip()


def statement(f: SqlFile, settings: Settings | None = None, **overrides: object) -> str:
    """One rendered, comment-free statement ready for Athena."""
    return strip_comments(render(f.text, params(settings, **overrides)))


def statements(kind: str | None = None, settings: Settings | None = None, **overrides: object) -> list[tuple[str, str]]:
    """``[(logical name, rendered SQL)]`` in execution order, optionally only ``table`` or ``view``."""
    return [(f.name, statement(f, settings, **overrides)) for f in files() if kind in (None, f.kind)]
