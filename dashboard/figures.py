"""Plotly figure builders: plain functions (DataFrame in, ``go.Figure`` out), no Streamlit, no I/O.

Everything renders offline: no map tiles, no CDN fonts (Streamlit ships plotly.js itself).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from petrostream.schema import EVENTS, VARIABLES

STATUS_COLORS = {"normal": "#2e7d32", "alarm": "#c62828", "stale": "#9e9e9e"}
ALARM_FILL = "rgba(198, 40, 40, 0.15)"
LABEL_FILL = "rgba(255, 160, 0, 0.12)"
CLASS_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                "#bcbd22", "#17becf")
_VAR = {v.column: v for v in VARIABLES}
_LAYOUT = {"margin": {"l": 40, "r": 20, "t": 50, "b": 40}, "template": "plotly_white"}


def class_name(c: Any) -> str:
    try:
        k = int(c)
    except (TypeError, ValueError):
        return "unlabelled"
    k = k - 100 if k >= 100 else k
    return f"{k} {EVENTS[k][1]}" if k in EVENTS else str(c)


def _empty(title: str, text: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=text, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_layout(title=title, xaxis={"visible": False}, yaxis={"visible": False}, **_LAYOUT)
    return fig


# ------------------------------------------------------------------ overview / live


def anomalies_by_class(df: pd.DataFrame) -> go.Figure:
    """Bar chart of anomaly episodes per 3W class (columns event_class, episodes)."""
    if df.empty:
        return _empty("Anomaly episodes by 3W class", "no anomaly episodes yet")
    names = [class_name(c) for c in df["event_class"]]
    fig = go.Figure(go.Bar(x=names, y=df["episodes"], name="episodes", marker_color=CLASS_COLORS[3]))
    fig.update_layout(title="Anomaly episodes by 3W class", yaxis_title="episodes", **_LAYOUT)
    return fig


def episodes_timeline(episodes: pd.DataFrame) -> go.Figure:
    """Episodes as horizontal bars (start -> end) per well, one trace per 3W class."""
    if episodes.empty:
        return _empty("Anomaly episodes", "no episodes match the filters")
    fig = go.Figure()
    first, last = pd.to_datetime(episodes["start_ts"]).min(), pd.to_datetime(episodes["end_ts"]).max()
    span_ms = max(((last - first).total_seconds() if not pd.isna(last) else 0.0) * 1000.0, 1000.0)
    for cls, part in episodes.groupby("event_class", sort=True):
        start = pd.to_datetime(part["start_ts"])
        end = pd.to_datetime(part["end_ts"]).fillna(start)
        # at least 1/150 of the shown span wide, so short episodes stay visible on a long axis
        width_ms = np.maximum((end - start).dt.total_seconds().to_numpy() * 1000.0, span_ms / 150.0)
        fig.add_trace(go.Bar(
            base=start, x=width_ms, y=part["well"], orientation="h", name=class_name(cls),
            marker_color=CLASS_COLORS[int(cls) % len(CLASS_COLORS)],
            customdata=np.stack([part["episode_id"], part["n_rows"], part["peak_score"]], axis=-1),
            hovertemplate="%{y}<br>%{base}<br>%{customdata[0]}<br>rows %{customdata[1]}"
                          "<br>peak score %{customdata[2]:.3f}<extra></extra>",
        ))
    fig.update_layout(title="Anomaly episodes", barmode="overlay", xaxis={"type": "date"},
                      yaxis={"title": "well", "autorange": "reversed"}, legend_title="3W class", **_LAYOUT)
    return fig


# ------------------------------------------------------------------ well history


def _runs(ts: pd.Series, flag: pd.Series, bucket_s: int) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Contiguous runs of True buckets as (start, end) spans."""
    out: list[tuple[pd.Timestamp, pd.Timestamp]] = []
    start = prev = None
    step = pd.Timedelta(seconds=bucket_s)
    for t, f in zip(ts, flag, strict=True):
        if f and start is None:
            start = t
        elif f and prev is not None and t - prev > step:
            out.append((start, prev + step))
            start = t
        elif not f and start is not None:
            out.append((start, prev + step))
            start = None
        if f:
            prev = t
    if start is not None:
        out.append((start, prev + step))
    return out


def _groups(columns: Sequence[str]) -> list[tuple[str, list[str]]]:
    kinds = {"pressure": "Pressure (Pa)", "temperature": "Temperature (degC)"}
    out: dict[str, list[str]] = {}
    for c in columns:
        kind = _VAR[c].kind if c in _VAR else "other"
        title = kinds.get(kind, "Other sensors")
        out.setdefault(title, []).append(c)
    order = ["Pressure (Pa)", "Temperature (degC)", "Other sensors"]
    return [(k, out[k]) for k in order if k in out]


def well_history(hist: pd.DataFrame, columns: Sequence[str], episodes: pd.DataFrame | None = None,
                 bucket_s: int = 1, title: str = "") -> go.Figure:
    """Sensor series (bucket average line + min/max band), anomaly score vs threshold, and the 3W label,
    stacked with a shared time axis; alarm episodes shaded red, labelled event periods shaded amber."""
    hist = break_gaps(hist, bucket_s)
    groups = _groups(columns)
    rows = len(groups) + 2
    heights = [3.0] * len(groups) + [1.6, 1.0]
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.04, row_heights=heights,
                        subplot_titles=[g for g, _ in groups] + ["Anomaly score", "3W label (event class)"])
    ts = hist["ts"] if not hist.empty else pd.Series(dtype="datetime64[ns]")
    mode = "lines+markers" if len(hist) < 300 else "lines"  # sparse data: isolated buckets stay visible
    for r, (_, cols) in enumerate(groups, start=1):
        for k, c in enumerate(cols):
            name = _VAR[c].name if c in _VAR else c
            color = CLASS_COLORS[(k + 3 * r) % len(CLASS_COLORS)]
            if bucket_s > 1 and f"{c}__min" in hist:
                bx, by = _band_polygons(ts, hist[f"{c}__min"], hist[f"{c}__max"])
                fig.add_trace(go.Scatter(x=bx, y=by, mode="lines", line={"width": 0}, fill="toself",
                                         fillcolor=_rgba(color, 0.2), name=f"{name} min-max", hoverinfo="skip",
                                         legendgroup=name, showlegend=False), row=r, col=1)
            fig.add_trace(go.Scatter(x=ts, y=hist.get(f"{c}__avg"), mode=mode, name=name, legendgroup=name,
                                     line={"color": color, "width": 1.5}, marker={"size": 3}), row=r, col=1)
    r_score, r_label = rows - 1, rows
    fig.add_trace(go.Scatter(x=ts, y=hist.get("score__max"), mode="lines", name="anomaly score (max)",
                             line={"color": "#c62828", "width": 1.2}), row=r_score, col=1)
    if "threshold" in hist and hist["threshold"].notna().any():
        fig.add_trace(go.Scatter(x=ts, y=hist["threshold"], mode="lines", name="threshold",
                                 line={"color": "#424242", "dash": "dash", "width": 1}), row=r_score, col=1)
    label = pd.to_numeric(hist.get("label_class", pd.Series(dtype="float64")), errors="coerce")
    fig.add_trace(go.Scatter(x=ts, y=label, mode="lines", line_shape="hv", name="3W label",
                             line={"color": "#ef6c00", "width": 1.5},
                             text=[class_name(v) if not pd.isna(v) else "unlabelled" for v in label],
                             hovertemplate="%{x}<br>%{text}<extra>3W label</extra>"), row=r_label, col=1)
    fig.update_yaxes(range=[-0.5, 9.5], dtick=1, row=r_label, col=1)
    if not hist.empty:
        for s, e in _runs(ts, label.fillna(0) > 0, bucket_s)[:300]:
            _band(fig, s, e, LABEL_FILL)
    if episodes is not None and not episodes.empty:
        for s, e in zip(pd.to_datetime(episodes["start_ts"]), pd.to_datetime(episodes["end_ts"]), strict=True):
            e = e if not pd.isna(e) else s
            _band(fig, s, e + pd.Timedelta(seconds=max(bucket_s, 1)), ALARM_FILL)
    res = "1 s (raw)" if bucket_s <= 1 else f"{_human_seconds(bucket_s)} buckets (avg line, min-max band)"
    fig.update_layout(title=f"{title}  -  resolution {res}".strip(" -"), height=220 * rows + 80,
                      hovermode="x unified", legend={"orientation": "h", "y": -0.08}, **_LAYOUT)
    return fig


def break_gaps(hist: pd.DataFrame, bucket_s: int) -> pd.DataFrame:
    """Insert one empty row after every gap (a missing bucket), so lines and bands break there instead of
    joining readings hours or years apart (3W instances of a well are separate recordings)."""
    if hist.empty or "ts" not in hist:
        return hist
    ts = pd.to_datetime(hist["ts"])
    step = pd.Timedelta(seconds=max(int(bucket_s), 1))
    gap = ts.diff().shift(-1) > step
    if not gap.any():
        return hist
    fillers = pd.DataFrame({"ts": ts[gap] + step})
    out = pd.concat([hist, fillers], ignore_index=True).sort_values("ts", ignore_index=True)
    return out


def _band_polygons(ts: pd.Series, lo: pd.Series, hi: pd.Series) -> tuple[list, list]:
    """A min-max band that never bridges a gap: one closed polygon (upper edge forward, lower edge back)
    per run of buckets with values, chained into one path whose links between polygons are walked there
    and back again, so they enclose no area (plotly.js versions differ on whether ``toself`` honours gaps,
    this renders the same in all of them)."""
    ok = (pd.notna(lo) & pd.notna(hi)).to_numpy()
    t, lo_v, hi_v = list(ts), list(lo), list(hi)
    polygons: list[tuple[list, list]] = []
    i, n = 0, len(t)
    while i < n:
        if not ok[i]:
            i += 1
            continue
        j = i
        while j + 1 < n and ok[j + 1]:
            j += 1
        seg = list(range(i, j + 1))
        px = [t[k] for k in seg] + [t[k] for k in reversed(seg)] + [t[i]]
        py = [hi_v[k] for k in seg] + [lo_v[k] for k in reversed(seg)] + [hi_v[i]]
        polygons.append((px, py))
        i = j + 1
    xs = [x for px, _ in polygons for x in px] + [px[0] for px, _ in reversed(polygons[:-1])]
    ys = [y for _, py in polygons for y in py] + [py[0] for _, py in reversed(polygons[:-1])]
    return xs, ys


def _band(fig: go.Figure, x0, x1, color: str) -> None:
    """One shaded time band across every stacked subplot (shared x axis, paper-height)."""
    fig.add_shape(type="rect", xref="x", yref="paper", x0=x0, x1=x1, y0=0, y1=1, fillcolor=color, line_width=0,
                  layer="below")


def _human_seconds(s: int) -> str:
    if s % 86400 == 0:
        return f"{s // 86400} d"
    if s % 3600 == 0:
        return f"{s // 3600} h"
    if s % 60 == 0:
        return f"{s // 60} min"
    return f"{s} s"


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r}, {g}, {b}, {alpha})"


# ------------------------------------------------------------------ status map


def status_grid(status: pd.DataFrame, columns: int | None = None) -> go.Figure:
    """Every well as a square tile coloured by status (normal / alarm / stale): a Plotly scatter laid out
    on a grid, so it needs no map tile server."""
    if status.empty:
        return _empty("Well status", "no wells in the lake yet")
    n = len(status)
    ncols = columns or max(1, min(8, math.ceil(math.sqrt(n * 1.6))))
    df = status.reset_index(drop=True).copy()
    df["col"] = df.index % ncols
    df["row"] = df.index // ncols
    nrows = int(df["row"].max()) + 1
    fig = go.Figure()
    for st in ("alarm", "stale", "normal"):
        part = df[df["status"] == st]
        if part.empty:
            continue
        hover = [_tile_hover(row, st) for _, row in part.iterrows()]
        fig.add_trace(go.Scatter(
            x=part["col"], y=part["row"], mode="markers+text", name=f"{st} ({len(part)})",
            marker={"symbol": "square", "size": 78, "color": STATUS_COLORS[st], "line": {"width": 1, "color": "#fff"}},
            text=[f"{w}<br>{st}" for w in part["well"]], textfont={"color": "white", "size": 10},
            hovertext=hover, hoverinfo="text",
        ))
    fig.update_layout(
        title="Well status", height=max(260, 100 * nrows + 120), showlegend=True,
        xaxis={"visible": False, "range": [-0.6, ncols - 0.4]},
        yaxis={"visible": False, "range": [nrows - 0.4, -0.6]},
        legend={"orientation": "h", "y": -0.05}, **_LAYOUT,
    )
    return fig


def _tile_hover(row: pd.Series, status: str) -> str:
    parts = [f"<b>{row['well']}</b>", f"status: {status}"]
    fields = (("last_ts", "last reading"), ("last_score", "last score"), ("alarms_last_hour", "alarms, last hour"),
              ("total_rows", "rows"), ("last_scored_at", "last scored (UTC)"))
    for col, label in fields:
        if col in row and not pd.isna(row[col]):
            v = row[col]
            parts.append(f"{label}: {v:.3f}" if isinstance(v, float) else f"{label}: {v}")
    return "<br>".join(parts)


# ------------------------------------------------------------------ model performance


def metrics_by_version(metrics: pd.DataFrame, names: Sequence[str]) -> go.Figure:
    """Grouped bars: one group per registered version, one bar per metric name."""
    cols = [m for m in names if m in metrics]
    if metrics.empty or not cols:
        return _empty("Metrics per version", "no metrics logged")
    fig = go.Figure()
    for m in cols:
        fig.add_trace(go.Bar(x=[f"v{v}" for v in metrics["version"]], y=metrics[m], name=m))
    fig.update_layout(title="Offline metrics per registered version", barmode="group", **_LAYOUT)
    return fig


def confusion_matrix(matrix: Sequence[Sequence[float]], labels: Sequence[str], title: str = "Confusion matrix"
                     ) -> go.Figure:
    z = np.asarray(matrix, dtype="float64")
    fig = go.Figure(go.Heatmap(z=z, x=[f"pred {x}" for x in labels], y=[f"true {y}" for y in labels],
                               colorscale="Blues", text=z.astype("int64").astype(str), texttemplate="%{text}",
                               showscale=False))
    fig.update_layout(title=title, yaxis={"autorange": "reversed"}, height=360, **_LAYOUT)
    return fig


def per_class_bars(df: pd.DataFrame, values: str | Sequence[str], title: str, yaxis: str) -> go.Figure:
    """Grouped bars per 3W class (column event_class), one bar per column in ``values`` present in ``df``."""
    cols = [values] if isinstance(values, str) else list(values)
    cols = [c for c in cols if c in df]
    if df.empty or not cols:
        return _empty(title, "not logged for this version")
    fig = go.Figure()
    for i, c in enumerate(cols):
        fig.add_trace(go.Bar(x=[class_name(k) for k in df["event_class"]], y=df[c], name=c,
                             marker_color=CLASS_COLORS[i % len(CLASS_COLORS)]))
    fig.update_layout(title=title, yaxis_title=yaxis, barmode="group", showlegend=len(cols) > 1, **_LAYOUT)
    return fig


def live_performance(perf: pd.DataFrame) -> go.Figure:
    """Precision / recall / F1 per day, one line per (metric, model version)."""
    if perf.empty:
        return _empty("Live performance against the 3W labels", "no labelled rows yet")
    fig = go.Figure()
    dash = {"precision": "dot", "recall": "solid", "f1": "dash"}
    for version, part in perf.groupby("model_version", sort=True, dropna=False):
        for m in ("precision", "recall", "f1"):
            fig.add_trace(go.Scatter(x=part["day"], y=part[m], mode="lines+markers", name=f"v{version} {m}",
                                     line={"dash": dash[m]}))
    fig.update_layout(title="Live performance against the 3W labels (per day, per model version)",
                      yaxis={"range": [0, 1.05], "title": "score"}, xaxis={"type": "category", "title": "day"},
                      **_LAYOUT)
    return fig


def drift_bars(table: pd.DataFrame, warn: float = 0.1, alert: float = 0.25) -> go.Figure:
    """PSI per sensor with the usual 0.1 / 0.25 reading lines."""
    if table.empty:
        return _empty("Input drift (PSI per sensor)", "no sensor with data on both sides")
    colors = [STATUS_COLORS["alarm"] if v > alert else "#f9a825" if v > warn else STATUS_COLORS["normal"]
              for v in table["psi"]]
    fig = go.Figure(go.Bar(x=table["sensor"], y=table["psi"], marker_color=colors, name="PSI",
                           customdata=table["ks"], hovertemplate="%{x}<br>PSI %{y:.3f}<br>KS %{customdata:.3f}"
                                                                  "<extra></extra>"))
    fig.add_hline(y=warn, line_dash="dot", line_color="#f9a825", annotation_text="0.1 moderate")
    fig.add_hline(y=alert, line_dash="dash", line_color=STATUS_COLORS["alarm"], annotation_text="0.25 shifted")
    fig.update_layout(title="Input drift (PSI per sensor)", yaxis_title="PSI", **_LAYOUT)
    return fig


# ------------------------------------------------------------------ data quality / executive


def quarantine_by_reason(df: pd.DataFrame) -> go.Figure:
    """Stacked bars of quarantined records per reason and day (columns reason, dt, records)."""
    if df.empty:
        return _empty("Quarantined records", "nothing quarantined")
    fig = go.Figure()
    for day, part in df.groupby("dt", sort=True):
        fig.add_trace(go.Bar(y=part["reason"], x=part["records"], orientation="h", name=str(day)))
    fig.update_layout(title="Quarantined records by reason", barmode="stack", xaxis_title="records",
                      legend_title="day", yaxis={"automargin": True}, **_LAYOUT)
    return fig


def executive_bars(df: pd.DataFrame, period: str, title: str) -> go.Figure:
    """Bars of the numeric columns of an executive view against its period column."""
    if df.empty or period not in df:
        return _empty(title, "no data yet")
    numeric = [c for c in df.columns if c != period and pd.api.types.is_numeric_dtype(df[c])]
    fig = make_subplots(rows=max(1, len(numeric)), cols=1, shared_xaxes=True, subplot_titles=numeric,
                        vertical_spacing=0.08)
    x = df[period].astype(str)
    for r, c in enumerate(numeric, start=1):
        fig.add_trace(go.Bar(x=x, y=df[c], name=c, marker_color=CLASS_COLORS[r % len(CLASS_COLORS)]), row=r, col=1)
    fig.update_layout(title=title, showlegend=False, height=max(300, 180 * len(numeric) + 80), **_LAYOUT)
    fig.update_xaxes(type="category")
    return fig
