"""Promotion: gate the challenger against the champion on the frozen holdout, move the alias, keep history.

``petrostream promote``:

1. resolve the challenger (alias ``challenger``, or ``--version``) and the current champion (alias
   ``champion``, possibly none);
2. rebuild the frozen holdout of the challenger's data dir (same files every time) and run the raw data
   suite (``petrostream.quality``) over its instances;
3. score challenger and champion on the same holdout, instance by instance, as a stream would;
4. gates: data suite passed; objective and recall at 1 % FPR not worse than the champion's beyond a
   tolerance; false alarms per hour, share of normal rows alarmed and scoring latency within limits;
5. only then move ``champion``, record the promotion and export the champion to the models bucket.

A refused promotion is recorded too, prints the failed gates and exits non-zero (``PromotionRefused``);
``--force`` promotes anyway and records that it was forced. ``--rollback`` moves ``champion`` back to the
previous champion (from the history) and exports it.

History: MLflow keeps no alias history, so every decision is written twice:

* a JSON line appended to ``s3://<models bucket>/<model name>/promotions.jsonl`` -- the durable audit log,
  next to the exported models, readable without MLflow;
* an MLflow run in the ``petrostream-promotions`` experiment (params, metrics, tags, the record as
  ``promotion.json``) -- queryable in the MLflow UI, and the source ``--rollback`` reads, because it lives in
  the same store as the aliases it has to agree with. The registered model also gets a
  ``last_promotion`` tag.
"""

from __future__ import annotations

import getpass
import json
import logging
import math
import os
import socket
import tempfile
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from petrostream.errors import UserError

log = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
PROMOTIONS_EXPERIMENT = "petrostream-promotions"


class PromotionError(UserError):
    """Promotion cannot run (no challenger, no data, registry or bucket unreachable)."""


class PromotionRefused(UserError):
    """The challenger failed at least one gate; the message names each failed gate."""


def history_key(name: str) -> str:
    return f"{name}/promotions.jsonl"


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return float(raw)
    except ValueError:
        raise UserError(f"{name}={raw!r} is not a number") from None


@dataclass(frozen=True)
class GateLimits:
    """Gate limits; defaults overridable by ``PETROSTREAM_PROMOTE_*`` environment variables or CLI flags."""

    objective_tolerance: float = 0.02  # max drop of J vs the champion
    recall_tolerance: float = 0.02  # max drop of recall at 1 % FPR vs the champion
    max_false_alarms_per_hour: float = 30.0  # alarm episodes starting on normal rows, per normal hour
    max_normal_alarm_share: float = 0.2  # share of normal rows alarmed (catches an always-on alarm)
    max_latency_ms_per_1k: float = 500.0  # model.predict on real rows, features included

    @classmethod
    def from_env(cls) -> GateLimits:
        d = cls()
        return cls(
            objective_tolerance=_env_float("PETROSTREAM_PROMOTE_OBJECTIVE_TOLERANCE", d.objective_tolerance),
            recall_tolerance=_env_float("PETROSTREAM_PROMOTE_RECALL_TOLERANCE", d.recall_tolerance),
            max_false_alarms_per_hour=_env_float("PETROSTREAM_PROMOTE_MAX_FALSE_ALARMS_PER_HOUR",
                                                 d.max_false_alarms_per_hour),
            max_normal_alarm_share=_env_float("PETROSTREAM_PROMOTE_MAX_NORMAL_ALARM_SHARE", d.max_normal_alarm_share),
            max_latency_ms_per_1k=_env_float("PETROSTREAM_PROMOTE_MAX_LATENCY_MS", d.max_latency_ms_per_1k),
        )

    def override(self, **kw: float | None) -> GateLimits:
        return replace(self, **{k: v for k, v in kw.items() if v is not None})


@dataclass
class Gate:
    name: str
    passed: bool
    value: float | None = None
    limit: float | None = None
    detail: str = ""
    skipped: bool = False

    def line(self) -> str:
        state = "skip" if self.skipped else ("pass" if self.passed else "FAIL")
        return f"  [{state}] {self.name}: {self.detail}"


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def evaluate_gates(challenger: dict[str, float], champion: dict[str, float] | None, limits: GateLimits,
                   data_check: Gate) -> list[Gate]:
    """The promotion gates, from flat metrics (``objective``, ``recall_at_1pct_fpr``, ``false_alarms_per_hour``,
    ``obs_fpr``, ``latency_ms_per_1k_rows``) of the challenger and (if any) the champion on the same holdout."""
    gates = [data_check]
    for key, tol, label in (("objective", limits.objective_tolerance, "objective J"),
                            ("recall_at_1pct_fpr", limits.recall_tolerance, "recall at 1% FPR")):
        c = _num(challenger.get(key))
        if champion is None:
            shown = f"{c:.4f}" if c is not None else "not measurable"
            gates.append(Gate(key, c is not None, c, None, f"{label} {shown} (no champion yet: nothing to compare)"))
            continue
        ch = _num(champion.get(key))
        if ch is None:
            gates.append(Gate(key, True, c, None, f"{label} {c}; champion's not measurable", skipped=True))
            continue
        ok = c is not None and c >= ch - tol
        gates.append(Gate(key, ok, c, ch - tol, f"{label} {c:.4f} vs champion {ch:.4f} (tolerance {tol})"
                          if c is not None else f"{label} not measurable"))
    fa = _num(challenger.get("false_alarms_per_hour"))
    gates.append(Gate("false_alarms_per_hour", fa is None or fa <= limits.max_false_alarms_per_hour, fa,
                      limits.max_false_alarms_per_hour,
                      f"{fa:.2f}/h <= {limits.max_false_alarms_per_hour}/h" if fa is not None
                      else "not measurable (no normal rows in the holdout)", skipped=fa is None))
    share = _num(challenger.get("obs_fpr"))
    gates.append(Gate("normal_alarm_share", share is None or share <= limits.max_normal_alarm_share, share,
                      limits.max_normal_alarm_share,
                      f"{share:.3f} of normal rows alarmed <= {limits.max_normal_alarm_share}" if share is not None
                      else "not measurable (no normal rows in the holdout)", skipped=share is None))
    lat = _num(challenger.get("latency_ms_per_1k_rows"))
    gates.append(Gate("latency", lat is not None and lat <= limits.max_latency_ms_per_1k, lat,
                      limits.max_latency_ms_per_1k,
                      f"{lat:.1f} ms per 1k rows <= {limits.max_latency_ms_per_1k}" if lat is not None
                      else "not measured"))
    return gates


# ------------------------------------------------------------------------------------------------ records


def who() -> str:
    actor = os.environ.get("GITHUB_ACTOR")
    try:
        user = getpass.getuser()
    except Exception:  # no user database in some containers
        user = os.environ.get("USER", "unknown")
    return f"{actor or user}@{socket.gethostname()}"


@dataclass
class PromotionRecord:
    action: str  # promote | rollback | refused | noop
    model: str
    from_version: str | None
    to_version: str | None
    who: str = field(default_factory=who)
    when: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    forced: bool = False
    reason: str = ""
    gates: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # challenger / champion on the holdout
    data: dict[str, Any] = field(default_factory=dict)
    export: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary_lines(self) -> list[str]:
        if self.action == "noop":
            return [f"{self.model} v{self.to_version} is already the champion: nothing to do"]
        head = {
            "promote": f"promoted {self.model} v{self.to_version} to champion (was "
                       f"{'v' + self.from_version if self.from_version else 'none'})"
                       + (" [FORCED]" if self.forced else ""),
            "rollback": f"rolled back {self.model} champion v{self.from_version} -> v{self.to_version}",
            "refused": f"refused to promote {self.model} v{self.to_version}",
        }[self.action]
        lines = [head]
        for name, m in self.metrics.items():
            if m:
                nan = float("nan")
                lines.append(f"  {name}: objective {m.get('objective', nan):.4f}, ROC-AUC "
                             f"{m.get('roc_auc', nan):.3f}, recall@1%FPR {m.get('recall_at_1pct_fpr', nan):.3f}, "
                             f"false alarms/h {m.get('false_alarms_per_hour', float('nan')):.2f}, "
                             f"latency {m.get('latency_ms_per_1k_rows', float('nan')):.1f} ms/1k rows")
        lines += [Gate(**g).line() for g in self.gates]
        if self.export.get("key"):
            lines.append(f"  exported to s3://{self.export.get('bucket')}/{self.export['key']}")
        elif self.export.get("error"):
            lines.append(f"  export FAILED: {self.export['error']} (retry: petrostream export)")
        return lines


def read_history(name: str | None = None) -> list[dict[str, Any]]:
    """Promotion records from the models bucket (JSON lines), oldest first; [] when none."""
    from botocore.exceptions import ClientError

    from petrostream import aws
    from petrostream.settings import get_settings

    s = get_settings()
    name = name or s.model_name
    try:
        body = aws.client("s3", s).get_object(Bucket=s.models_bucket, Key=history_key(name))["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code", "") in ("NoSuchKey", "404"):
            return []
        raise PromotionError(f"s3://{s.models_bucket}/{history_key(name)}: cannot read ({exc})") from None
    return [json.loads(line) for line in body.decode().splitlines() if line.strip()]


def append_history(record: PromotionRecord) -> str:
    """Append one JSON line to the bucket's history (read-modify-write; the bucket is versioned)."""
    from petrostream import aws
    from petrostream.settings import get_settings

    s = get_settings()
    lines = [json.dumps(r, sort_keys=True, default=str) for r in read_history(record.model)]
    lines.append(json.dumps(record.to_dict(), sort_keys=True, default=str))
    aws.client("s3", s).put_object(Bucket=s.models_bucket, Key=history_key(record.model),
                                   Body=("\n".join(lines) + "\n").encode(), ContentType="application/x-ndjson")
    return history_key(record.model)


def _promotions_experiment() -> str:

    from training.tracking import setup

    return setup(PROMOTIONS_EXPERIMENT)


def log_history_run(record: PromotionRecord) -> str:
    """One MLflow run per decision in the ``petrostream-promotions`` experiment; returns its id."""
    import mlflow
    from mlflow import MlflowClient

    exp_id = _promotions_experiment()
    tags = {"model": record.model, "action": record.action, "who": record.who, "forced": str(record.forced),
            "from_version": record.from_version or "", "to_version": record.to_version or "", "when": record.when}
    with mlflow.start_run(experiment_id=exp_id, run_name=f"{record.action} v{record.to_version}", tags=tags) as run:
        mlflow.log_params({"action": record.action, "from_version": record.from_version or "none",
                           "to_version": record.to_version or "none", "forced": record.forced})
        for side, m in record.metrics.items():
            mlflow.log_metrics({f"{side}_{k}": v for k, v in m.items() if _num(v) is not None})
        mlflow.log_dict(record.to_dict(), "promotion.json")
    if record.action in ("promote", "rollback"):
        compact = {k: record.to_dict()[k] for k in ("action", "from_version", "to_version", "who", "when", "forced")}
        MlflowClient().set_registered_model_tag(record.model, "last_promotion", json.dumps(compact))
    return run.info.run_id


def mlflow_history(name: str) -> list[dict[str, Any]]:
    """Promotion records from MLflow (oldest first)."""
    import mlflow

    exp_id = _promotions_experiment()
    runs = mlflow.search_runs([exp_id], filter_string=f"tags.model = '{name}'", order_by=["start_time ASC"],
                              output_format="list", max_results=10_000)
    out = []
    for r in runs:
        t = r.data.tags
        out.append({"action": t.get("action"), "from_version": t.get("from_version") or None,
                    "to_version": t.get("to_version") or None, "who": t.get("who"), "when": t.get("when"),
                    "forced": t.get("forced") == "True", "run_id": r.info.run_id})
    return out


def champion_stack(history: list[dict[str, Any]]) -> list[str]:
    """Champion versions in order of reign: a promotion pushes, a rollback pops."""
    stack: list[str] = []
    for rec in history:
        if rec.get("action") == "promote" and rec.get("to_version"):
            stack.append(str(rec["to_version"]))
        elif rec.get("action") == "rollback" and stack:
            stack.pop()
    return stack


def record_decision(record: PromotionRecord) -> PromotionRecord:
    run_id = log_history_run(record)
    record.data["mlflow_run_id"] = run_id
    append_history(record)
    log.info("promotion recorded", extra={"action": record.action, "from": record.from_version,
                                           "to": record.to_version, "run_id": run_id})
    return record


# ------------------------------------------------------------------------------------------------ registry


def _client():
    import mlflow
    from mlflow import MlflowClient

    from petrostream.settings import get_settings

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    mlflow.set_tracking_uri(get_settings().mlflow_tracking_uri)
    return MlflowClient()


def version_by_alias(client, name: str, alias: str):
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def resolve_version(client, name: str, version: str | None, alias: str):
    """The registered version ``version``, or the one behind ``alias``; PromotionError naming what is missing."""
    if version:
        from mlflow.exceptions import MlflowException

        try:
            return client.get_model_version(name, str(version))
        except MlflowException:
            raise PromotionError(f"{name} v{version}: no such registered model version") from None
    mv = version_by_alias(client, name, alias)
    if mv is None:
        hint = "run petrostream train first" if alias == CHALLENGER else "promote one first"
        raise PromotionError(f"{name}: no version has the alias '{alias}' ({hint})")
    return mv


def _check_bucket() -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    from petrostream import aws
    from petrostream.settings import get_settings

    s = get_settings()
    try:
        aws.client("s3", s, connect_timeout=3, read_timeout=10).head_bucket(Bucket=s.models_bucket)
    except (BotoCoreError, ClientError) as exc:
        raise PromotionError(
            f"models bucket s3://{s.models_bucket} is not reachable ({type(exc).__name__}); start the emulator "
            "(petrostream local up) or point AWS_ENDPOINT_URL/credentials at it") from None


# ------------------------------------------------------------------------------------------------ evaluation


def data_gate(infos) -> Gate:
    """The raw data suite over the holdout instances (skipped, with the reason, if petrostream.quality is absent)."""
    try:
        from petrostream import quality
    except ImportError as exc:
        reason = f"petrostream.quality not available ({exc}); data suite not run"
        log.warning("data gate skipped", extra={"reason": reason})
        return Gate("data_suite", True, detail=reason, skipped=True)
    failed = []
    for info in infos:
        try:
            df = quality.read_raw(info.path)
            res = quality.validate_frame(df, "raw", parameters={"instance_labels": quality.instance_labels(info)},
                                         run_name=info.instance_id)
        except UserError as exc:
            failed.append(f"{info.path.parent.name}/{info.path.name}: {exc}")
            continue
        if not res.success:
            failed.append(f"{info.path.parent.name}/{info.path.name}: {'; '.join(res.failed[:2])}")
    detail = (f"raw suite passed on all {len(infos)} holdout instances" if not failed
              else f"{len(failed)}/{len(infos)} holdout instances fail the raw suite, e.g. {failed[0]}")
    return Gate("data_suite", not failed, float(len(failed)), 0.0, detail)


def holdout_metrics(model, infos, progress: bool = True, label: str = "holdout") -> dict[str, float]:
    """Flat holdout metrics of a model (streamed instance by instance), with objective and latency."""
    from petrostream.metrics import evaluate
    from training.tuning import latency_ms_per_1k, objective_value, stream_holdout

    report = evaluate(stream_holdout(model, infos, progress=progress, label=label))
    m = {k: v for k, v in report.to_dict().items()}
    m["objective"] = objective_value(m)[0]
    m["latency_ms_per_1k_rows"] = latency_ms_per_1k(model, infos)
    return m


def _clean(m: dict[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in m.items() if _num(v) is not None}


def resolve_data_dir(data_dir: Path | None, mv) -> Path:
    from petrostream.settings import get_settings

    candidates = [data_dir, get_settings().data_dir, (mv.tags or {}).get("data_dir")]
    for c in candidates:
        if c:
            p = Path(c)
            if p.is_dir():
                return p
            if c is data_dir:
                raise PromotionError(f"{p}: data directory not found")
    raise PromotionError("no data directory for the holdout: pass --data DIR (or set PETROSTREAM_DATA_DIR); the "
                         f"challenger's recorded one ({(mv.tags or {}).get('data_dir', 'none')}) is not available")


def do_promote(data_dir: Path | None = None, version: str | None = None, force: bool = False,
               limits: GateLimits | None = None, export: bool = True, reason: str = "",
               progress: bool = True) -> PromotionRecord:
    """Gate and promote (see module doc). Raises ``PromotionRefused`` when a gate fails and ``force`` is off."""
    from petrostream import pyfunc
    from petrostream.settings import get_settings
    from training.data import make_splits

    limits = limits or GateLimits.from_env()
    s = get_settings()
    name = s.model_name
    client = _client()
    challenger = resolve_version(client, name, version, CHALLENGER)
    champion = version_by_alias(client, name, CHAMPION)
    if champion is not None and str(champion.version) == str(challenger.version):
        return PromotionRecord("noop", name, str(champion.version), str(challenger.version))
    if export:
        _check_bucket()

    root = resolve_data_dir(data_dir, challenger)
    plan = make_splits(root)
    holdout = plan.infos["holdout"]
    if not holdout:
        raise PromotionError(f"{root}: the holdout split is empty; cannot evaluate")
    recorded = (challenger.tags or {}).get("split_fp_holdout")
    data = {"dir": str(root), "holdout_fingerprint": plan.fingerprints["holdout"], "holdout_instances": len(holdout),
            "split_version": plan.version, "holdout_matches_training": recorded == plan.fingerprints["holdout"]}
    if recorded and recorded != plan.fingerprints["holdout"]:
        log.warning("holdout differs from the one recorded at training time",
                    extra={"recorded": recorded[:12], "now": plan.fingerprints["holdout"][:12]})

    print(f"holdout: {len(holdout)} instances of {root} (sha256 {plan.fingerprints['holdout'][:12]})", flush=True)
    check = data_gate(holdout)
    print(f"evaluating challenger v{challenger.version} ...", flush=True)
    chal_m = holdout_metrics(pyfunc.load(f"models:/{name}/{challenger.version}"), holdout, progress,
                             f"holdout v{challenger.version}")
    champ_m = None
    if champion is not None:
        print(f"evaluating champion v{champion.version} ...", flush=True)
        try:
            champ_model = pyfunc.load(f"models:/{name}/{champion.version}")
        except UserError as exc:  # e.g. saved by an older, incompatible feature code: serving cannot load it either
            log.warning("champion cannot be loaded: relative gates skipped", extra={"error": str(exc)})
            data["champion_unloadable"] = str(exc)
        else:
            champ_m = holdout_metrics(champ_model, holdout, progress, f"holdout v{champion.version}")
    gates = evaluate_gates(chal_m, champ_m, limits, check)
    if champion is not None and champ_m is None:
        for g in gates:
            if g.name in ("objective", "recall_at_1pct_fpr"):
                g.skipped, g.detail = True, f"{g.detail}; champion v{champion.version} cannot be loaded by this code"
    failed = [g for g in gates if not g.passed and not g.skipped]
    record = PromotionRecord(
        "promote", name, str(champion.version) if champion else None, str(challenger.version),
        forced=bool(failed) and force,
        reason=reason, gates=[asdict(g) for g in gates], data=data,
        metrics={"challenger": _clean(chal_m), **({"champion": _clean(champ_m)} if champ_m else {})},
    )
    record.data["limits"] = asdict(limits)
    if failed and not force:
        record.action = "refused"
        record_decision(record)
        for line in record.summary_lines():
            print(line, flush=True)
        raise PromotionRefused(f"promotion of {name} v{challenger.version} refused: failed gate(s) "
                               + "; ".join(f"{g.name} ({g.detail})" for g in failed)
                               + " (--force to override, recorded)")
    client.set_registered_model_alias(name, CHAMPION, str(challenger.version))
    log.info("champion moved", extra={"model": name, "from": record.from_version, "to": record.to_version})
    _export_into(record, str(challenger.version), export)
    return _raise_if_export_failed(record_decision(record))


def _raise_if_export_failed(record: PromotionRecord) -> PromotionRecord:
    if record.export.get("error"):
        for line in record.summary_lines():
            print(line, flush=True)
        raise PromotionError(f"champion is now {record.model} v{record.to_version} (recorded) but the export failed: "
                             f"{record.export['error']}; retry with: petrostream export")
    return record


def _export_into(record: PromotionRecord, version: str, export: bool) -> None:
    if not export:
        record.export = {"skipped": True}
        return
    try:
        manifest = export_model(version=version)
        record.export = {"bucket": manifest.get("bucket"), "key": f"{record.model}/{CHAMPION}.json",
                         "prefix": manifest.get("prefix")}
    except UserError as exc:
        record.export = {"error": str(exc)}
        log.error("export failed", extra={"error": str(exc)})


def do_rollback(export: bool = True, reason: str = "") -> PromotionRecord:
    """Move ``champion`` back to the previous champion (per the promotion history) and export it."""
    from petrostream.settings import get_settings

    name = get_settings().model_name
    client = _client()
    current = version_by_alias(client, name, CHAMPION)
    if current is None:
        raise PromotionError(f"{name}: no champion to roll back from")
    if export:
        _check_bucket()
    stack = champion_stack(mlflow_history(name))
    now = str(current.version)
    if not stack or stack[-1] != now:
        if stack:
            log.warning("champion alias was moved outside petrostream promote", extra={"alias": now,
                                                                                       "history": stack[-1]})
        stack.append(now)
    if len(stack) < 2:
        raise PromotionError(f"{name}: no previous champion recorded before v{current.version}; "
                             "nothing to roll back to")
    target = stack[-2]
    client.set_registered_model_alias(name, CHAMPION, target)
    record = PromotionRecord("rollback", name, now, target, reason=reason)
    _export_into(record, target, export)
    return _raise_if_export_failed(record_decision(record))


def export_model(version: str | None = None, alias: str = CHAMPION) -> dict[str, Any]:
    """Export a registered version (default: the one behind ``alias``) with ``petrostream.model_store.export``;
    the manifest is written as ``<name>/<alias>.json``."""
    from petrostream import model_store, pyfunc
    from petrostream.settings import get_settings

    s = get_settings()
    name = s.model_name
    mv = resolve_version(_client(), name, version, alias)
    client = _client()
    metrics = {}
    if mv.run_id:
        run = client.get_run(mv.run_id)
        metrics = {k.removeprefix("holdout_"): v for k, v in run.data.metrics.items() if k.startswith("holdout_")}
        metrics["latency_ms_per_1k_rows"] = run.data.metrics.get("latency_ms_per_1k_rows")
    with tempfile.TemporaryDirectory(prefix="petrostream-export-") as tmp:
        local = pyfunc.download(f"models:/{name}/{mv.version}", Path(tmp) / "model")
        manifest = model_store.export(local, name=name, version=mv.version, run_id=mv.run_id, metrics=metrics,
                                      alias=alias, settings=s)
    manifest["uri"] = f"s3://{s.models_bucket}/{model_store.manifest_key(name, alias)}"
    return manifest
