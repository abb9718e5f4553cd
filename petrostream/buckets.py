"""Emptying S3 buckets completely (every object version and delete marker).

``terraform destroy`` refuses to delete a non-empty bucket, and a versioned bucket is only empty
when its old versions and delete markers are gone too. ``project_down.sh`` calls this (through
``petrostream empty-buckets``) before destroying the stack.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from petrostream.aws import client

PAGE = 1000  # S3 DeleteObjects accepts at most 1000 keys per call


def _s3(s3: Any | None) -> Any:
    return s3 if s3 is not None else client("s3")


def iter_versions(name: str, s3: Any | None = None) -> Iterator[list[dict[str, str]]]:
    """Pages (<= 1000) of ``{"Key", "VersionId"}`` for every version and delete marker of ``name``."""
    s3 = _s3(s3)
    paginator = s3.get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=name, PaginationConfig={"PageSize": PAGE}):
        entries = [
            {"Key": item["Key"], "VersionId": item["VersionId"]}
            for kind in ("Versions", "DeleteMarkers")
            for item in page.get(kind, []) or []
        ]
        for start in range(0, len(entries), PAGE):
            yield entries[start : start + PAGE]


def count_versions(name: str, s3: Any | None = None) -> int:
    """Object versions plus delete markers in ``name`` (what :func:`empty_bucket` would delete)."""
    return sum(len(page) for page in iter_versions(name, s3))


def bucket_exists(name: str, s3: Any | None = None) -> bool:
    from botocore.exceptions import ClientError

    try:
        _s3(s3).head_bucket(Bucket=name)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in {"404", "NoSuchBucket", "NotFound"}:
            return False
        raise
    return True


def empty_bucket(name: str, s3: Any | None = None) -> int:
    """Delete every object version and delete marker of bucket ``name``; return how many were deleted.

    Pages are listed first and then deleted with ``DeleteObjects`` (1000 keys per call), repeated
    until a listing comes back empty, so versions created meanwhile are caught as well.
    Raises ``RuntimeError`` if S3 reports per-key errors.
    """
    s3 = _s3(s3)
    deleted = 0
    while True:
        pages = list(iter_versions(name, s3))
        if not any(pages):
            return deleted
        for batch in pages:
            if not batch:
                continue
            resp = s3.delete_objects(Bucket=name, Delete={"Objects": batch, "Quiet": True})
            errors = resp.get("Errors") or []
            if errors:
                first = errors[0]
                raise RuntimeError(
                    f"could not delete {len(errors)} object(s) from s3://{name}: "
                    f"{first.get('Key')} ({first.get('Code')}: {first.get('Message')})"
                )
            deleted += len(batch)
