"""Download the official 3W release archive: resumable (HTTP Range into a ``.part`` file), checksummed,
extracted, and the 3W-layout directory inside located.

    fetch(dest, url=DEFAULT_URL, sha256=None) -> FetchResult

Errors are one line (``UserError``): unreachable host, HTTP status, checksum mismatch (the partial download
is deleted so the next attempt starts clean), an archive without 3W instances.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from petrostream.errors import UserError

log = logging.getLogger(__name__)

# The petrobras/3W repository at its v2.0.0 tag (dataset/<class>/<instance>.parquet inside). It cannot be
# reached from every machine (not from the build sandbox): override with --url / --sha256 for a mirror.
DEFAULT_URL = "https://github.com/petrobras/3W/archive/refs/tags/v2.0.0.zip"
CHUNK = 1 << 20
TIMEOUT_S = 60.0


class FetchError(UserError):
    """A download or extraction problem, said in one line."""


@dataclass(frozen=True)
class FetchResult:
    archive: Path
    sha256: str
    downloaded_bytes: int  # this run (0 when the archive was already complete)
    resumed_from: int  # bytes already in the .part file when this run started
    extracted_to: Path
    layout_dir: Path  # the directory holding <class>/<instance>.parquet
    instances: int


def archive_name(url: str) -> str:
    name = unquote(Path(urlparse(url).path).name) or "3w-archive"
    if urlparse(url).netloc.endswith("github.com") and "/archive/" in urlparse(url).path:
        parts = [p for p in urlparse(url).path.split("/") if p]
        if len(parts) >= 2:
            name = f"{parts[1]}-{name}"  # 3W-v2.0.0.zip rather than v2.0.0.zip
    return name


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def download(url: str, target: Path, sha256: str | None = None, progress: bool = True) -> tuple[int, int]:
    """Download ``url`` to ``target`` through ``target.part``, resuming a previous partial download.

    Returns (bytes downloaded now, bytes resumed from). Verifies ``sha256`` if given.
    """
    import httpx

    from petrostream.progress import Progress

    part = target.with_name(target.name + ".part")
    target.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    resumed_from = 0
    got = 0
    try:
        with httpx.Client(follow_redirects=True, timeout=TIMEOUT_S) as client:
            with client.stream("GET", url, headers=headers) as resp:
                if resp.status_code == 416 and have:
                    # nothing left to send: the .part is complete (or the server changed); the checksum decides
                    resumed_from = have
                else:
                    if resp.status_code >= 400:
                        raise FetchError(f"download failed: HTTP {resp.status_code} {resp.reason_phrase} from {url}")
                    if have and resp.status_code == 206:
                        resumed_from = have
                        mode = "ab"
                    else:
                        mode = "wb"  # server ignored the Range: start over
                    length = resp.headers.get("Content-Length")
                    remaining = int(length) if length and length.isdigit() else None
                    total = resumed_from + remaining if remaining is not None else None
                    label = f"download {target.name}"
                    if resumed_from:
                        label += f" (resumed at {resumed_from:,} bytes)"
                    bar = Progress(label, total=remaining, unit="bytes", enabled=progress)
                    with open(part, mode) as fh:
                        for chunk in resp.iter_bytes(CHUNK):
                            fh.write(chunk)
                            got += len(chunk)
                            bar.update(len(chunk))
                    if bar.enabled:
                        bar.close()
                    if total is not None and part.stat().st_size < total:
                        raise FetchError(
                            f"download interrupted: {part.stat().st_size:,} of {total:,} bytes in {part} "
                            "(run the same command again to resume)"
                        )
    except httpx.HTTPError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FetchError(
            f"download failed: {urlparse(url).netloc or url} unreachable or connection lost ({reason}); "
            f"{part.stat().st_size if part.exists() else 0:,} bytes kept in {part.name}, run again to resume"
        ) from None
    digest = sha256_file(part)
    if sha256 and digest.lower() != sha256.lower():
        part.unlink(missing_ok=True)
        raise FetchError(f"checksum mismatch for {target.name}: expected {sha256.lower()}, got {digest} "
                         "(partial download deleted)")
    part.replace(target)
    return got, resumed_from


def extract(archive: Path, into: Path) -> Path:
    """Extract a zip or tar(.gz/.bz2/.xz) archive into ``into`` (refusing paths that escape it)."""
    into.mkdir(parents=True, exist_ok=True)
    root = into.resolve()
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for member in zf.infolist():
                dest = (root / member.filename).resolve()
                if not dest.is_relative_to(root):
                    raise FetchError(f"{archive.name}: unsafe path in archive: {member.filename}")
            zf.extractall(root)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tf:
            try:
                tf.extractall(root, filter="data")
            except tarfile.FilterError as exc:
                raise FetchError(f"{archive.name}: unsafe member in archive ({exc})") from None
    else:
        raise FetchError(f"{archive.name}: not a zip or tar archive")
    return root


def find_layout(root: Path) -> tuple[Path, int]:
    """The shallowest directory below ``root`` with ``<digit>/<name>.parquet`` children, and its instance count."""
    best: tuple[int, Path] | None = None
    for dirpath, dirnames, _ in os.walk(root):
        dirnames.sort()
        d = Path(dirpath)
        if any(n.isdigit() and any((d / n).glob("*.parquet")) for n in dirnames):
            depth = len(d.relative_to(root).parts)
            if best is None or depth < best[0]:
                best = (depth, d)
            dirnames[:] = []  # do not look inside a layout dir
    if best is None:
        raise FetchError(f"{root}: no 3W layout (<class>/<instance>.parquet) found in the extracted archive")
    layout = best[1]
    files = [p for p in layout.glob("*/*.parquet") if p.parent.name.isdigit()]
    with open(files[0], "rb") as fh:
        head = fh.read(64)
    if head.startswith(b"version https://git-lfs"):
        raise FetchError(f"{layout}: the archive holds Git LFS pointers, not parquet data (use a release with data)")
    return layout, len(files)


def fetch(dest: str | Path, url: str = DEFAULT_URL, sha256: str | None = None, progress: bool = True) -> FetchResult:
    dest = Path(dest)
    archive = dest / archive_name(url)
    if archive.exists() and (sha256 is None or sha256_file(archive).lower() == sha256.lower()):
        got, resumed = 0, 0
        log.info("archive already downloaded", extra={"archive": str(archive)})
    else:
        archive.unlink(missing_ok=True)
        got, resumed = download(url, archive, sha256, progress=progress)
    digest = sha256_file(archive)
    into = dest / _strip_archive_suffix(archive.name)
    if into.exists():
        shutil.rmtree(into)
    extract(archive, into)
    layout, n = find_layout(into)
    return FetchResult(archive, digest, got, resumed, into, layout, n)


def _strip_archive_suffix(name: str) -> str:
    for suffix in (".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".zip", ".tar"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name + ".d"
