"""``petrostream train | promote | export``: the training side of the one CLI (heavy imports inside)."""

from __future__ import annotations

from pathlib import Path

import typer


def train(
    data: Path = typer.Option(None, "--data", envvar="PETROSTREAM_DATA_DIR", help="3W-layout data directory."),
    profile: str = typer.Option("quick", "--profile", help="quick (minutes on 2 cores) or full."),
    trials: int = typer.Option(None, "--trials", min=1, help="Optuna trials this run (default: from the profile)."),
    timeout: float = typer.Option(None, "--timeout", min=1, help="Stop starting new trials after S seconds."),
    families: str = typer.Option(None, "--families", help="Detector families, e.g. iforest,lof,gaussian."),
    seed: int = typer.Option(0, "--seed", help="Seed of sampling, detectors, TPE and the train/validation split."),
    study: str = typer.Option(None, "--study", help="Optuna study name (default: per data fingerprint + profile)."),
    max_rows: int = typer.Option(None, "--max-rows-per-instance", min=10,
                                 help="Training rows kept per instance, per kind (normal / other)."),
    eval_stride: int = typer.Option(None, "--eval-stride", min=1, help="Score every k-th validation row."),
    register: bool = typer.Option(True, "--register/--no-register", help="Register the best model as challenger."),
) -> None:
    """Tune detectors on wells split by well, track everything in MLflow, register the best as challenger."""
    from petrostream.errors import UserError
    from training.tuning import PROFILES, TrainOptions, run_training

    if data is None:
        raise UserError("no data directory: pass --data DIR or set PETROSTREAM_DATA_DIR")
    if profile not in PROFILES:
        raise UserError(f"unknown profile {profile!r} (choose from {', '.join(PROFILES)})")
    opts = TrainOptions.from_profile(
        profile, data_dir=data, trials=trials, timeout=timeout, families=families, seed=seed, study_name=study,
        max_rows_per_instance=max_rows, eval_stride=eval_stride, register=register,
    )
    result = run_training(opts)
    for line in result.summary_lines():
        typer.echo(line)


def promote(
    data: Path = typer.Option(None, "--data", envvar="PETROSTREAM_DATA_DIR",
                              help="3W data dir for the holdout (default: the one the challenger was trained on)."),
    version: str = typer.Option(None, "--version", envvar=["PETROSTREAM_PROMOTE_VERSION", "MODEL_VERSION"],
                                help="Model version to promote (default: the one with alias challenger)."),
    force: bool = typer.Option(False, "--force", help="Promote even if gates fail (recorded as forced)."),
    rollback: bool = typer.Option(False, "--rollback", help="Restore the previous champion."),
    objective_tolerance: float = typer.Option(None, "--objective-tolerance", min=0,
                                              help="Max allowed drop of the objective vs the champion."),
    recall_tolerance: float = typer.Option(None, "--recall-tolerance", min=0,
                                           help="Max allowed drop of recall at 1% FPR vs the champion."),
    max_false_alarms: float = typer.Option(None, "--max-false-alarms-per-hour", min=0,
                                           help="Max false alarms per hour of normal operation on the holdout."),
    max_latency: float = typer.Option(None, "--max-latency-ms", min=0, help="Max scoring latency, ms per 1k rows."),
    export: bool = typer.Option(True, "--export/--no-export", help="Export the new champion to the models bucket."),
    reason: str = typer.Option("", "--reason", help="Free text recorded with the promotion."),
) -> None:
    """Gate the challenger against the champion on the frozen holdout; move `champion` only if it passes."""
    from training.promote import GateLimits, do_promote, do_rollback

    if rollback:
        record = do_rollback(export=export, reason=reason)
    else:
        limits = GateLimits.from_env().override(
            objective_tolerance=objective_tolerance, recall_tolerance=recall_tolerance,
            max_false_alarms_per_hour=max_false_alarms, max_latency_ms_per_1k=max_latency,
        )
        record = do_promote(data_dir=data, version=version or None, force=force, limits=limits, export=export,
                            reason=reason)
    for line in record.summary_lines():
        typer.echo(line)


def export(
    version: str = typer.Option(None, "--version", help="Model version (default: the current champion)."),
) -> None:
    """Export the champion (or --version) to the models bucket, with champion.json."""
    from training.promote import export_model

    manifest = export_model(version=version or None)
    typer.echo(f"exported {manifest.get('name')} v{manifest.get('version')} -> {manifest.get('uri', '')}")


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("promote")(promote)
    app.command("export")(export)
