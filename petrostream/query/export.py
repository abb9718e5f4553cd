"""Export the reporting views to files, so Power BI Desktop works without AWS (``powerbi export``)."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pandas as pd

from petrostream.errors import UserError
from petrostream.query.base import Backend

log = logging.getLogger(__name__)

# What the Power BI report reads (powerbi/REPORT_SPEC.md); v_event_classes is the label dimension.
POWERBI_VIEWS: tuple[str, ...] = (
    "v_exec_monthly",
    "v_exec_yearly",
    "v_daily_well_summary",
    "v_model_performance",
    "v_well_status",
    "v_event_classes",
)
FORMATS = ("parquet", "csv")
# Rows in a stable order, so two exports of the same data are the same files.
ORDER_BY: dict[str, str] = {
    "v_exec_monthly": "month",
    "v_exec_yearly": "year",
    "v_daily_well_summary": "well, dt",
    "v_model_performance": "model_version, dt",
    "v_well_status": "well",
    "v_event_classes": "label",
}


def _write(df: pd.DataFrame, path: Path, fmt: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp, compression="zstd")
    else:
        df.to_csv(tmp, index=False, date_format="%Y-%m-%dT%H:%M:%S.%f")
    tmp.replace(path)  # Power BI never reads a half-written file


def export_views(
    dest: Path | str,
    fmt: str = "parquet",
    views: tuple[str, ...] | list[str] = POWERBI_VIEWS,
    backend: Backend | None = None,
) -> dict[str, dict]:
    """Write each view to ``<dest>/<view>.<fmt>`` plus ``manifest.json``; returns the manifest entries."""
    if fmt not in FORMATS:
        raise UserError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if backend is None:
        from petrostream.query import get_backend

        backend = get_backend()
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    entries: dict[str, dict] = {}
    for view in views:
        t0 = time.monotonic()
        df = backend.view(view, order_by=ORDER_BY.get(view))
        path = dest / f"{view}.{fmt}"
        _write(df, path, fmt)
        entries[view] = {"file": path.name, "rows": len(df), "columns": list(map(str, df.columns))}
        log.info("exported", extra={"view": view, "rows": len(df), "path": str(path),
                                    "seconds": round(time.monotonic() - t0, 2)})
    manifest = {
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "backend": backend.name,
        "format": fmt,
        "views": entries,
    }
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return entries
