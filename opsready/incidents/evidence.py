"""Evidence bundles: a deterministic .tar.gz of what was known at an incident's open and
resolve, with a manifest of per-file sha256, so the recorded hash proves what was kept.

The same content always gives the same bytes (sorted names, zero times and owners, fixed
gzip header), so an activity retried after a crash writes an identical bundle.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import tarfile
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import BaseModel, ConfigDict

from opsready.errors import OpsreadyError
from opsready.redaction import Redactor
from workflows.incident_types import EvidenceRef, IncidentPhase

MANIFEST = "manifest.json"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_PHASES = ("open", "resolve")


class EvidenceError(OpsreadyError):
    """An evidence bundle cannot be written, or does not match its recorded hash."""


class BundleRef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str
    sha256: str
    files: dict[str, str]  # name -> sha256 of its content, as in the manifest

    def as_evidence(self) -> EvidenceRef:
        return EvidenceRef(path=self.path, sha256=self.sha256)


def bundle_path(dest_dir: Path, incident_id: str, phase: IncidentPhase) -> Path:
    return dest_dir / f"{incident_id}-{phase}.tar.gz"


def file_name(incident_id: str) -> str:
    """An incident id as a file name: a dedup key may hold `/` or spaces."""
    return _UNSAFE.sub("_", incident_id).lstrip(".") or "incident"


def incident_folder(base_dir: Path, incident_id: str, opened_at: datetime) -> Path:
    """Where one incident keeps its bundles and postmortem draft: a dedup key opens a new
    incident (the same workflow id) after the last one was resolved, so each gets a folder
    of its own under its id, named for when it opened."""
    stamp = opened_at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return base_dir / file_name(incident_id) / stamp


def write_bundle(
    dest_dir: Path,
    incident_id: str,
    phase: IncidentPhase,
    items: Mapping[str, bytes | str | Any],
    *,
    redactor: Redactor | None = None,
) -> BundleRef:
    """Write `dest_dir/<incident_id>-<phase>.tar.gz` from `items` (name -> content).

    Bytes are kept as they are; text and JSON-able values (pydantic models included) pass
    through redaction first, so a bundle never keeps a secret a log line would not.
    """
    if phase not in _PHASES:
        raise EvidenceError(f"evidence phase {phase!r}: use 'open' or 'resolve'")
    if not incident_id or "/" in incident_id or incident_id.startswith("."):
        raise EvidenceError(f"incident id {incident_id!r} cannot name a bundle file")
    redactor = redactor or Redactor.from_env()
    contents = {_checked_name(name): _encode(value, redactor) for name, value in items.items()}
    files = {name: _sha256(data) for name, data in sorted(contents.items())}
    manifest = {
        "incident_id": incident_id,
        "phase": phase,
        "files": {
            name: {"sha256": digest, "size": len(contents[name])} for name, digest in files.items()
        },
    }
    contents[MANIFEST] = _json_bytes(manifest)
    data = _tar_gz(contents)
    path = bundle_path(dest_dir, incident_id, phase)
    _write_atomically(path, data)
    return BundleRef(path=str(path), sha256=_sha256(data), files=files)


def verify_bundle(path: Path | str, sha256: str) -> None:
    """Raise EvidenceError unless the bundle has this hash and every file its manifest's."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise EvidenceError(f"{path}: cannot read the evidence bundle: {err.strerror}") from None
    actual = _sha256(data)
    if actual != sha256:
        raise EvidenceError(
            f"{path}: sha256 is {actual}, the incident recorded {sha256}: the bundle was changed"
        )
    contents = _read_members(path, data)
    try:
        listed = json.loads(contents.pop(MANIFEST))["files"]
    except (KeyError, ValueError, TypeError):
        raise EvidenceError(f"{path}: no readable {MANIFEST} in the bundle") from None
    for name in sorted(set(listed) | set(contents)):
        if name not in contents:
            raise EvidenceError(f"{path}: {name} is in the manifest but not in the bundle")
        if name not in listed:
            raise EvidenceError(f"{path}: {name} is in the bundle but not in the manifest")
        if _sha256(contents[name]) != listed[name].get("sha256"):
            raise EvidenceError(f"{path}: {name} does not match its manifest sha256")


def read_bundle(path: Path | str) -> dict[str, bytes]:
    """Every file of a bundle by name (the manifest included); verify it first."""
    path = Path(path)
    return _read_members(path, path.read_bytes())


def _checked_name(name: str) -> str:
    pure = PurePosixPath(name)
    if (
        not name
        or name == MANIFEST
        or pure.is_absolute()
        or ".." in pure.parts
        or "\\" in name
        or str(pure) != name
    ):
        raise EvidenceError(
            f"evidence item name {name!r}: use a relative path without '..' (not {MANIFEST})"
        )
    return name


def _encode(value: bytes | str | Any, redactor: Redactor) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return str(redactor.redact(value)).encode("utf-8")
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    try:
        return _json_bytes(redactor.redact(value))
    except (TypeError, ValueError) as err:
        raise EvidenceError(f"evidence item is not JSON-able: {err}") from None


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _tar_gz(contents: Mapping[str, bytes]) -> bytes:
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(contents):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(contents[name]), 0, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(contents[name]))
    packed = io.BytesIO()
    # filename="" and mtime=0 keep the gzip header free of the temp name and the clock.
    with gzip.GzipFile(filename="", mode="wb", fileobj=packed, mtime=0, compresslevel=9) as gz:
        gz.write(tar_bytes.getvalue())
    return packed.getvalue()


def _read_members(path: Path, data: bytes) -> dict[str, bytes]:
    contents: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for member in tar.getmembers():
                extracted = tar.extractfile(member) if member.isfile() else None
                if extracted is None:
                    raise EvidenceError(f"{path}: {member.name} is not a regular file")
                contents[member.name] = extracted.read()
    except (tarfile.TarError, OSError, EOFError) as err:
        raise EvidenceError(f"{path}: not a readable evidence bundle: {err}") from None
    return contents


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
