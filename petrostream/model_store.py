"""Export the champion model to S3 and pull it back, verified (adapter: boto3 via ``petrostream.aws``).

Layout in the models bucket::

    s3://<models_bucket>/<name>/v<version>/<relative path>   every file of the MLflow model directory
    s3://<models_bucket>/<name>/<alias>.json                 the manifest (champion.json), written LAST

The manifest names the version, run, metrics and every file with its sha256 and size. It is written
after all files, so a reader never sees a manifest that points to a partial export; ``pull`` verifies
every file against it and refuses a corrupted or incomplete copy.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import logging
import os
import shutil
import socket
import tempfile
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from petrostream import aws
from petrostream.errors import UserError
from petrostream.settings import Settings, get_settings

log = logging.getLogger(__name__)

MANIFEST_VERSION = 1
VERIFIED_MARKER = ".petrostream-verified.json"


class ModelStoreError(UserError):
    """An export that cannot be written, found or trusted (the message names the file and the problem)."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def scan(model_dir: Path) -> dict[str, dict[str, Any]]:
    """{relative posix path: {sha256, bytes}} of every file under ``model_dir`` (the verified marker excluded)."""
    files = {}
    for p in sorted(model_dir.rglob("*")):
        if p.is_file() and p.name != VERIFIED_MARKER:
            files[p.relative_to(model_dir).as_posix()] = {"sha256": _sha256(p), "bytes": p.stat().st_size}
    return files


def version_prefix(name: str, version: int | str) -> str:
    return f"{name}/v{version}/"


def manifest_key(name: str, alias: str = "champion") -> str:
    return f"{name}/{alias}.json"


def _who() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # no user database in some containers
        user = os.environ.get("USER", "unknown")
    return f"{user}@{socket.gethostname()}"


def export(local_model_dir: Path, *, name: str, version: int | str, run_id: str | None, metrics: dict[str, Any],
           alias: str = "champion", settings: Settings | None = None) -> dict[str, Any]:
    """Upload every file of ``local_model_dir`` under ``<name>/v<version>/``, then the manifest; return it."""
    s = settings or get_settings()
    local_model_dir = Path(local_model_dir)
    if not local_model_dir.is_dir():
        raise ModelStoreError(f"{local_model_dir}: model directory not found")
    files = scan(local_model_dir)
    if not files:
        raise ModelStoreError(f"{local_model_dir}: model directory is empty")
    s3 = aws.client("s3", s)
    prefix = version_prefix(name, version)
    for rel, info in files.items():
        s3.upload_file(str(local_model_dir / rel), s.models_bucket, prefix + rel,
                       ExtraArgs={"Metadata": {"sha256": info["sha256"]}})
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "name": name,
        "version": str(version),
        "run_id": run_id,
        "alias": alias,
        "metrics": {k: _json_number(v) for k, v in (metrics or {}).items()},
        "bucket": s.models_bucket,
        "prefix": prefix,
        "files": files,
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "exported_by": _who(),
    }
    s3.put_object(Bucket=s.models_bucket, Key=manifest_key(name, alias),
                  Body=json.dumps(manifest, indent=2, sort_keys=True).encode(), ContentType="application/json")
    log.info("model exported", extra={"model": name, "version": str(version), "files": len(files),
                                      "uri": f"s3://{s.models_bucket}/{manifest_key(name, alias)}"})
    return manifest


def _json_number(v: Any) -> Any:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return v
    return None if f != f else f  # NaN is not JSON


def read_manifest(name: str | None = None, settings: Settings | None = None, alias: str = "champion") -> dict | None:
    """The manifest of ``name`` (default: settings.model_name) for ``alias``, or None when nothing was exported."""
    from botocore.exceptions import ClientError

    s = settings or get_settings()
    name = name or s.model_name
    key = manifest_key(name, alias)
    try:
        body = aws.client("s3", s).get_object(Bucket=s.models_bucket, Key=key)["Body"].read()
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("NoSuchKey", "404"):
            return None
        raise ModelStoreError(f"s3://{s.models_bucket}/{key}: cannot read manifest ({code or exc})") from None
    try:
        manifest = json.loads(body)
    except ValueError:
        manifest = None
    if not isinstance(manifest, dict) or not {"files", "name", "version"} <= set(manifest):
        raise ModelStoreError(f"s3://{s.models_bucket}/{key}: not a valid model manifest")
    return manifest


def _safe_rel(rel: str) -> str:
    p = PurePosixPath(rel)
    if p.is_absolute() or ".." in p.parts or not p.parts:
        raise ModelStoreError(f"manifest lists an unsafe path {rel!r}")
    return rel


def _verify(root: Path, files: dict[str, dict[str, Any]], where: str) -> None:
    for rel, info in files.items():
        p = root / rel
        if not p.is_file():
            raise ModelStoreError(f"{where}{rel}: missing (partial export?)")
        size = p.stat().st_size
        if size != int(info["bytes"]):
            raise ModelStoreError(f"{where}{rel}: size {size} B, manifest says {info['bytes']} B (corrupted export)")
        digest = _sha256(p)
        if digest != info["sha256"]:
            raise ModelStoreError(f"{where}{rel}: sha256 {digest[:12]}... differs from manifest "
                                  f"{str(info['sha256'])[:12]}... (corrupted export)")


def _cached(local: Path, manifest: dict) -> bool:
    marker = local / VERIFIED_MARKER
    if not marker.is_file():
        return False
    try:
        if json.loads(marker.read_text()) != manifest["files"]:
            return False
        _verify(local, manifest["files"], f"{local}/")
    except (ValueError, ModelStoreError):
        return False
    return True


def pull(manifest: dict, dest: Path, settings: Settings | None = None) -> Path:
    """Download the version named by ``manifest`` into ``dest/<name>/v<version>``, verified; return that dir.

    Reuses an earlier verified pull of the same version. Raises ``ModelStoreError`` naming the file when
    a file is missing, has the wrong size or the wrong sha256.
    """
    from botocore.exceptions import ClientError

    s = settings or get_settings()
    name, version, files = manifest["name"], manifest["version"], manifest["files"]
    bucket = manifest.get("bucket") or s.models_bucket
    prefix = manifest.get("prefix") or version_prefix(name, version)
    where = f"s3://{bucket}/{prefix}"
    local = Path(dest) / name / f"v{version}"
    if _cached(local, manifest):
        log.info("model cache hit", extra={"model": name, "version": version, "dir": str(local)})
        return local
    local.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".v{version}-", dir=local.parent))
    try:
        s3 = aws.client("s3", s)
        for rel in files:
            target = tmp / _safe_rel(rel)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                s3.download_file(bucket, prefix + rel, str(target))
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code in ("404", "NoSuchKey"):
                    raise ModelStoreError(f"{where}{rel}: missing (partial export?)") from None
                raise ModelStoreError(f"{where}{rel}: cannot download ({code or exc})") from None
        _verify(tmp, files, where)
        (tmp / VERIFIED_MARKER).write_text(json.dumps(files, sort_keys=True))
        if local.exists():
            shutil.rmtree(local, ignore_errors=True)
        try:
            tmp.rename(local)
        except OSError:  # a concurrent pull won the race: use its copy if it verifies
            if not _cached(local, manifest):
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    log.info("model pulled", extra={"model": name, "version": version, "files": len(files), "dir": str(local)})
    return local


def default_cache_dir() -> Path:
    return Path(os.environ.get("PETROSTREAM_MODEL_CACHE") or Path(tempfile.gettempdir()) / "petrostream-models")


def load_champion(settings: Settings | None = None, cache_dir: Path | None = None, alias: str = "champion"):
    """(AnomalyModel, manifest) of the exported champion: read_manifest + pull + load (no MLflow server needed)."""
    from petrostream import pyfunc

    s = settings or get_settings()
    manifest = read_manifest(settings=s, alias=alias)
    if manifest is None:
        raise ModelStoreError(f"s3://{s.models_bucket}/{manifest_key(s.model_name, alias)}: no exported model "
                              "(train, promote and export one first)")
    local = pull(manifest, Path(cache_dir) if cache_dir else default_cache_dir(), s)
    return pyfunc.load(local), manifest
