"""Evidence bundles are deterministic tarballs whose recorded hash catches any change."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from opsready.incidents.evidence import (
    MANIFEST,
    EvidenceError,
    read_bundle,
    verify_bundle,
    write_bundle,
)
from opsready.redaction import MASK
from workflows.incident_types import EvidenceRef

ITEMS: dict[str, object] = {
    "trigger.json": {"kind": "slo_burn", "numbers": {"burn_rate": 14.4}},
    "logs/worker.log": "run r1 failed\nrun r2 failed\n",
    "flags.bin": b"\x00\x01\x02",
}


def test_bundle_round_trips_every_item_and_its_manifest(tmp_path: Path) -> None:
    ref = write_bundle(tmp_path, "incident-x", "open", ITEMS)
    assert ref.path == str(tmp_path / "incident-x-open.tar.gz")
    verify_bundle(ref.path, ref.sha256)
    files = read_bundle(ref.path)
    assert files["flags.bin"] == b"\x00\x01\x02"
    assert files["logs/worker.log"] == b"run r1 failed\nrun r2 failed\n"
    assert json.loads(files["trigger.json"]) == ITEMS["trigger.json"]
    manifest = json.loads(files[MANIFEST])
    assert (manifest["incident_id"], manifest["phase"]) == ("incident-x", "open")
    assert sorted(manifest["files"]) == sorted(ITEMS) == sorted(ref.files)
    assert manifest["files"]["flags.bin"]["sha256"] == ref.files["flags.bin"]
    assert ref.as_evidence() == EvidenceRef(path=ref.path, sha256=ref.sha256)


def test_same_content_gives_the_same_hash_whatever_the_order_or_folder(tmp_path: Path) -> None:
    first = write_bundle(tmp_path / "a", "incident-x", "resolve", ITEMS)
    reordered = dict(reversed(list(ITEMS.items())))
    second = write_bundle(tmp_path / "b", "incident-x", "resolve", reordered)
    assert first.sha256 == second.sha256
    assert Path(first.path).read_bytes() == Path(second.path).read_bytes()


def test_different_content_gives_a_different_hash(tmp_path: Path) -> None:
    first = write_bundle(tmp_path, "incident-x", "open", ITEMS)
    second = write_bundle(tmp_path, "incident-x", "open", {**ITEMS, "flags.bin": b"\x00"})
    assert first.sha256 != second.sha256


def test_tar_entries_carry_no_time_or_owner(tmp_path: Path) -> None:
    ref = write_bundle(tmp_path, "incident-x", "open", ITEMS)
    data = Path(ref.path).read_bytes()
    assert data[4:8] == b"\x00\x00\x00\x00"  # gzip header mtime
    with tarfile.open(ref.path) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == sorted([*ITEMS, MANIFEST])
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, 0, "", "")}


def test_one_changed_byte_fails_verification(tmp_path: Path) -> None:
    ref = write_bundle(tmp_path, "incident-x", "open", ITEMS)
    path = Path(ref.path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(EvidenceError, match=r"the incident recorded \w+: the bundle was changed"):
        verify_bundle(path, ref.sha256)


def test_a_file_that_disagrees_with_the_manifest_fails_verification(tmp_path: Path) -> None:
    ref = write_bundle(tmp_path, "incident-x", "open", ITEMS)
    files = read_bundle(ref.path)
    files["logs/worker.log"] = b"run r1 succeeded\n"  # rewritten, manifest kept
    forged = tmp_path / "forged.tar.gz"
    forged.write_bytes(_tar_gz(files))
    digest = _sha256(forged)
    with pytest.raises(EvidenceError, match=r"logs/worker\.log does not match its manifest"):
        verify_bundle(forged, digest)
    del files["logs/worker.log"]
    forged.write_bytes(_tar_gz(files))
    with pytest.raises(EvidenceError, match="in the manifest but not in the bundle"):
        verify_bundle(forged, _sha256(forged))


def test_missing_bundle_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EvidenceError, match="cannot read the evidence bundle"):
        verify_bundle(tmp_path / "nope.tar.gz", "0" * 64)


def test_text_and_json_items_are_redacted_bytes_are_kept(tmp_path: Path) -> None:
    secret = "sk-live-0123456789abcdefghijkl"
    items = {"note.txt": f"key {secret}", "cfg.json": {"api_key": "x"}, "raw": secret.encode()}
    files = read_bundle(write_bundle(tmp_path, "incident-x", "open", items).path)
    assert secret not in files["note.txt"].decode()
    assert json.loads(files["cfg.json"]) == {"api_key": MASK}
    assert files["raw"] == secret.encode()


@pytest.mark.parametrize("name", ["../escape", "/abs", MANIFEST, "", "a//b", "a\\b"])
def test_item_names_that_could_escape_or_clash_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(EvidenceError, match="use a relative path"):
        write_bundle(tmp_path, "incident-x", "open", {name: "x"})


def test_rewriting_a_bundle_leaves_no_temporary_files(tmp_path: Path) -> None:
    write_bundle(tmp_path, "incident-x", "open", ITEMS)
    write_bundle(tmp_path, "incident-x", "open", ITEMS)
    assert [p.name for p in tmp_path.iterdir()] == ["incident-x-open.tar.gz"]


def _tar_gz(files: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue())


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
