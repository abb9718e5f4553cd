"""``petrostream demo``: the whole pipeline on this machine, end to end, with a summary.

It drives the other commands as subprocesses (the core never imports the deployables): emulator up,
data (yours or synthetic), validate, train, promote + export, inference service, replay, wait until
every row is in the lake, summary, then leaves the API, MLflow UI and dashboard running.
``petrostream demo --down`` stops everything it started.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import typer

PIDS_FILE = "demo-pids.json"


def _ps(*args: str) -> list[str]:
    return [sys.executable, "-m", "petrostream.cli", *args]


def _step(msg: str) -> None:
    typer.secho(f"==> {msg}", fg=typer.colors.CYAN, err=True)


def _run(args: list[str], what: str, capture: bool = False, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, text=True, capture_output=capture)
    if check and proc.returncode != 0:
        from petrostream.errors import UserError

        tail = (proc.stderr or "").strip().splitlines()[-1:] if capture else []
        raise UserError(f"demo step '{what}' failed (exit {proc.returncode}){': ' + tail[0] if tail else ''}")
    return proc


def _background(args: list[str], log: Path, env: dict | None = None) -> subprocess.Popen:
    fh = open(log, "ab")  # noqa: SIM115 - owned by the child
    return subprocess.Popen(args, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
                            env={**os.environ, **(env or {})})


def _wait_http(url: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return True
        except Exception:
            time.sleep(0.5)
    return False


def _save_pids(state: Path, pids: dict[str, int]) -> None:
    path = state / PIDS_FILE
    old = json.loads(path.read_text()) if path.exists() else {}
    path.write_text(json.dumps({**old, **pids}))


def down() -> None:
    from petrostream import local
    from petrostream.settings import get_settings

    state = Path(get_settings().state_dir)
    path = state / PIDS_FILE
    if path.exists():
        for name, pid in json.loads(path.read_text()).items():
            try:
                os.killpg(pid, signal.SIGTERM)
                typer.echo(f"stopped {name} (pid {pid})")
            except ProcessLookupError:
                pass
        path.unlink()
    if local.stop():
        typer.echo("stopped the local AWS emulator")


def demo(
    data: Path = typer.Option(None, envvar="PETROSTREAM_DATA_DIR", help="3W-layout dir (default: synthesise)."),
    profile: str = typer.Option("quick", help="Training profile."),
    classes: str = typer.Option("", help="Only replay these classes, e.g. '2,3,6'."),
    limit_instances: int = typer.Option(0, help="Replay at most N instances (0 = all)."),
    down_: bool = typer.Option(False, "--down", help="Stop everything a previous demo started."),
    keep_running: bool = typer.Option(True, help="Leave API, MLflow UI and dashboard running."),
) -> None:
    """Run the whole pipeline locally and print what happened."""
    if down_:
        down()
        return
    from petrostream import aws, local
    from petrostream.settings import get_settings

    s = get_settings()
    state = Path(s.state_dir)
    state.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()

    _step("local AWS emulator")
    emu = local.up()
    aws.use_local_endpoint(emu.endpoint)
    typer.echo(f"emulator at {emu.endpoint}", err=True)

    if data is None:
        data = state / "demo-data"
        _step(f"no PETROSTREAM_DATA_DIR: synthesising a labelled SYNTHETIC 3W set in {data}")
        _run(_ps("data", "synth", "--dest", str(data)), "synth")
    _step(f"validating {data} (Great Expectations)")
    if _run(_ps("validate", str(data)), "validate", check=False).returncode != 0:
        typer.secho("some instances failed validation (see above); going on", fg=typer.colors.YELLOW, err=True)

    _step(f"training ({profile} profile)")
    _run(_ps("train", "--data", str(data), "--profile", profile), "train")
    _step("promoting challenger -> champion and exporting it to S3")
    if _run(_ps("promote"), "promote", check=False).returncode != 0:
        # The registry (mlruns/) outlives the emulator's in-memory S3: re-export the champion it names.
        typer.secho("promotion refused (gates above): the current champion keeps serving", fg=typer.colors.YELLOW,
                    err=True)
        if _run(_ps("export"), "export", check=False).returncode != 0:
            raise typer.Exit(_fail("promotion refused and there is no champion to serve"))

    _step("fresh ingest stream")
    local.ensure_stream(s.stream_name, s.stream_shards, fresh=True)

    _step("inference service")
    api = f"http://127.0.0.1:{s.api_port}"
    serve = _background(_ps("serve"), state / "serve.log", {"PETROSTREAM_API_HOST": "127.0.0.1"})
    _save_pids(state, {"inference": serve.pid})
    if not _wait_http(f"{api}/health", 90):
        raise typer.Exit(_fail(f"inference service did not come up; see {state / 'serve.log'}"))

    _step("replaying 3W instances into Kinesis at max speed")
    args = ["produce", str(data), "--speed", "max", "--json-summary"]
    if classes:
        args += ["--classes", classes]
    if limit_instances:
        args += ["--limit-instances", str(limit_instances)]
    produced = json.loads(_run(_ps(*args), "produce", capture=True).stdout.strip().splitlines()[-1])
    rows_in = int(produced["rows"])

    _step(f"waiting until all {rows_in:,} rows are in the lake")
    scored = _wait_for_lake(rows_in, timeout=max(300.0, rows_in / 2_000))

    extras = {}
    if keep_running:
        extras = _start_uis(state, s)
    _summary(produced, scored, time.monotonic() - t0, api, extras)


def _fail(msg: str) -> int:
    typer.secho(f"error: {msg}", fg=typer.colors.RED, err=True)
    return 1


def _wait_for_lake(expected: int, timeout: float):
    from petrostream.lake import SCORED, read_table

    deadline = time.monotonic() + timeout
    last = -1
    while True:
        df = read_table(SCORED)
        if len(df) >= expected:
            return df
        if len(df) != last:
            typer.echo(f"   lake: {len(df):,}/{expected:,} rows", err=True)
            last = len(df)
        if time.monotonic() > deadline:
            typer.secho(f"timed out: {len(df):,}/{expected:,} rows in the lake", fg=typer.colors.YELLOW, err=True)
            return df
        time.sleep(2)


def _start_uis(state: Path, s) -> dict[str, str]:
    urls = {}
    mlflow_port, dash_port = 5000, 8501
    ui = _background([str(Path(sys.executable).parent / "mlflow"), "ui", "--backend-store-uri", s.mlflow_tracking_uri,
                      "--host", "127.0.0.1", "--port", str(mlflow_port), "--workers", "1"], state / "mlflow-ui.log")
    dash = _background(_ps("dashboard", "--port", str(dash_port)), state / "dashboard.log")
    _save_pids(state, {"mlflow-ui": ui.pid, "dashboard": dash.pid})
    urls["MLflow UI"] = f"http://127.0.0.1:{mlflow_port}"
    urls["dashboard"] = f"http://127.0.0.1:{dash_port}"
    return urls


def _summary(produced: dict, scored, elapsed: float, api: str, urls: dict[str, str]) -> None:
    import pandas as pd

    from petrostream.schema import event_name

    typer.echo("")
    typer.secho("PetroStream demo summary", bold=True)
    typer.echo(f"  rows produced      {int(produced['rows']):,} in {int(produced.get('records', 0)):,} records")
    unique = scored[["instance_id", "ts"]].drop_duplicates().shape[0]
    typer.echo(f"  rows in the lake   {len(scored):,} (unique {unique:,})")
    versions = ", ".join(sorted(scored["model_version"].dropna().astype(str).unique()))
    typer.echo(f"  scored by model    version {versions}")
    typer.echo(f"  anomalous rows     {int(scored['is_anomaly'].sum()):,} ({scored['is_anomaly'].mean():.1%})")
    lat = (pd.to_datetime(scored["scored_at"]) - pd.to_datetime(scored["sent_at"])).dt.total_seconds()
    if lat.notna().any():
        typer.echo(f"  end-to-end latency p50 {lat.quantile(0.5):.2f} s, p95 {lat.quantile(0.95):.2f} s")
    if produced.get("rows_per_s"):
        typer.echo(f"  producer throughput {produced['rows_per_s']:,.0f} rows/s")
    by_class = scored.assign(cls=scored["event_class"]).groupby("cls").agg(
        instances=("instance_id", "nunique"), rows=("ts", "size"), anomalies=("is_anomaly", "sum"))
    per_instance = scored.groupby(["event_class", "instance_id"]).apply(_detected, include_groups=False)
    by_class["detected"] = per_instance.groupby(level=0).sum()
    typer.echo("  by 3W class (instance folder):")
    for cls, row in by_class.iterrows():
        typer.echo(
            f"    {cls:>3} {event_name(int(cls)):32s} instances {row.instances:>4}  rows {row.rows:>9,}  "
            f"anomalies {int(row.anomalies):>8,}  alarmed after onset {int(row.detected)}/{row.instances}"
        )
    typer.echo(f"  wall time          {elapsed:,.0f} s")
    typer.echo(f"  API                {api}  (/health /ready /model /metrics /docs)")
    for name, url in urls.items():
        typer.echo(f"  {name:18s} {url}")
    typer.echo("  stop everything:   make demo-down")


def _detected(g) -> int:
    """1 if the instance has an alarm at or after its first event label."""
    lab = g["label"].astype("Int64")
    onset = g.loc[lab.fillna(0).ne(0).to_numpy(), "ts"]
    if onset.empty:
        return 0
    return int(((g["ts"] >= onset.min()) & (g["is_anomaly"] == 1)).any())


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
