"""Hostile artifacts in an archive: each is recorded as refused with its reason (or, where it is
harmless, indexed without following anything), the run goes on to the good artifact beside
it, exits 0, stays within memory and time, and changes nothing outside the index."""

from __future__ import annotations

import json
import lzma
import os
import sqlite3
import stat
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hostile import Sentinel, assert_clean_exit, run_limited
from test_archive_support import SITE, ar_bytes, deb, dir_info, file_info, raw_deb, sdist, tar_bytes, wheel


def _special(name: str, kind: bytes) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    return info, None


def _link(name: str, target: str, hard: bool = False) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
    info.linkname = target
    return info, None


def _huge_pax_header() -> bytes:
    """A tar stream whose first header is a pax header declaring 2 GiB of data."""
    info = tarfile.TarInfo("././@PaxHeader")
    info.type = tarfile.XHDTYPE
    info.size = 2 << 30
    return lzma.compress(info.tobuf(tarfile.USTAR_FORMAT) + b"\0" * 4096)


def _bomb() -> bytes:
    """100 MiB of zeros in one member: about 15 KiB of xz, far past any honest ratio."""
    size = 100 << 20
    info = tarfile.TarInfo(f"./{SITE}/bomb/__init__.py")
    info.size = size
    compressor = lzma.LZMACompressor()
    parts = [compressor.compress(info.tobuf(tarfile.GNU_FORMAT))]
    zeros = b"\0" * (1 << 20)
    for _ in range(size >> 20):
        parts.append(compressor.compress(zeros))
    parts.append(compressor.compress(b"\0" * 1024))
    parts.append(compressor.flush())
    return b"".join(parts)


def _zip_bomb_wheel(directory: Path) -> Path:
    """50 MiB of zeros in one member, listed in RECORD with its true hash: only the ratio is wrong."""
    return wheel(directory, "zipbomb", {"zipbomb/__init__.py": "", "zipbomb/data.bin": b"\0" * (50 << 20)})


# name -> (make the artifact in a directory, what the refusal says, or None: indexed safely)
CASES: dict[str, tuple[Callable[[Path], Path], str | None]] = {
    "wheel-climbing-member": (lambda d: wheel(d, "evil", {"../evil.py": "x"}), "climbs out"),
    # Refused by the ratio rule, or read through bounded decompression: either way within bounds.
    "wheel-zip-bomb": (_zip_bomb_wheel, "ANY"),
    "deb-climbing-member": (lambda d: raw_deb(d, "python3-evil_1_all.deb", [
        dir_info("./"), file_info(f"./{SITE}/../../../../../etc/evil", b"x")]), "climbs out"),
    "deb-absolute-member": (lambda d: raw_deb(d, "python3-evil_1_all.deb", [
        file_info("/etc/evil", b"x")]), "absolute name"),
    "deb-fifo-member": (lambda d: raw_deb(d, "python3-evil_1_all.deb", [
        _special(f"./{SITE}/evil/__init__.py", tarfile.FIFOTYPE)]), "special file"),
    "deb-device-member": (lambda d: raw_deb(d, "python3-evil_1_all.deb", [
        _special(f"./{SITE}/evil.so", tarfile.CHRTYPE)]), "special file"),
    "deb-hard-link-to-nothing": (lambda d: raw_deb(d, "python3-evil_1_all.deb", [
        _link(f"./{SITE}/evil/__init__.py", "etc/shadow", hard=True)]), "hard link"),
    "deb-huge-pax-header": (lambda d: raw_deb(d, "python3-evil_1_all.deb", [], data_bytes=_huge_pax_header()),
                            "extended header"),
    "deb-tar-bomb": (lambda d: raw_deb(d, "python3-evil_1_all.deb", [], data_bytes=_bomb()), "archive bomb"),
    "deb-truncated-xz": (lambda d: raw_deb(d, "python3-evil_1_all.deb", [], data_bytes=tar_bytes(
        [file_info(f"./{SITE}/x.py", os.urandom(50000))])[:3000]), "not a readable tar stream"),
    "deb-garbage-zstd": (lambda d: raw_deb(d, "python3-evil_1_all.deb", [], data_name="data.tar.zst",
                                           data_bytes=b"\x28\xb5\x2f\xfd" + os.urandom(500)), "data.tar"),
    "deb-not-an-ar-archive": (lambda d: _write(d / "python3-evil_1_all.deb", b"garbage" * 100), "ar archive"),
    "deb-ar-member-past-the-end": (lambda d: _write(d / "python3-evil_1_all.deb", ar_bytes(
        [("debian-binary", b"2.0\n")])[:-2]), "runs past the end"),
    "sdist-climbing-member": (lambda d: _write(d / "evil-1.0.tar.gz", tar_bytes(
        [file_info("evil-1.0/../../x.py", b"x")], "gz")), "climbs out"),
    "deb-symlink-leaving-the-root": (lambda d: raw_deb(d, "python3-evil_1_all.deb", [
        dir_info("./"), file_info(f"./{SITE}/evil/mod.py", b""),
        _link(f"./{SITE}/evil/__init__.py", "/etc/passwd")]), "symbolic link in the archive; not followed"),
    "deb-symlink-module": (lambda d: raw_deb(d, "python3-evil_1_all.deb", [
        dir_info("./"), file_info(f"./{SITE}/evil/__init__.py", b""),
        _link(f"./{SITE}/evil/mod.py", "/etc/passwd")]), None),
}


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_artifact_is_refused_and_the_run_goes_on(case: str, tmp_path: Path) -> None:
    make, reason = CASES[case]
    root = tmp_path / "archive"
    hostile = make(root / "hostile")
    wheel(root / "good", "good", {"good/__init__.py": "G = 1\n"})
    sentinel = Sentinel(tmp_path / "outside")
    db = tmp_path / "index.sqlite"
    result = run_limited("archive", "index", str(root), "--db", str(db), "--jobs", "1", "--json")
    assert_clean_exit(result, [0])
    summary = json.loads(result.stdout)
    rows = dict(sqlite3.connect(db).execute("SELECT filename, status || ': ' || coalesce(reason, '') FROM artifacts"))
    assert rows.pop("good-1.0-py3-none-any.whl").startswith("indexed")
    if reason is None:
        assert rows == {hostile.name: "indexed: "}
    elif reason == "ANY":
        assert list(rows) == [hostile.name]
    else:
        assert list(rows) == [hostile.name] and rows[hostile.name].startswith("refused"), rows
        assert reason in rows[hostile.name], rows
        assert summary["refused"] == 1
    sentinel.assert_unchanged()
    # Nothing but the index (and SQLite's WAL beside it) was written.
    assert {p.name for p in tmp_path.iterdir()} <= {"archive", "outside", db.name, f"{db.name}-wal", f"{db.name}-shm"}


def test_fifo_and_links_in_the_archive_directory_do_not_hang(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    root.mkdir()
    os.mkfifo(root / "blocked-1.0-py3-none-any.whl")
    outside = wheel(tmp_path / "elsewhere", "outside", {"outside.py": ""})
    os.symlink(outside, root / "outside-1.0-py3-none-any.whl")
    wheel(root, "good", {"good.py": ""})
    db = tmp_path / "index.sqlite"
    result = run_limited("archive", "index", str(root), "--db", str(db), "--jobs", "1", "--json")
    assert_clean_exit(result, [0])
    summary = json.loads(result.stdout)
    assert summary["indexed"] == 1 and summary["unreadable"] == 1  # the FIFO; the link is not walked into
    assert stat.S_ISFIFO(os.lstat(root / "blocked-1.0-py3-none-any.whl").st_mode)


def test_sdist_zip_bomb_is_refused(tmp_path: Path) -> None:
    import zipfile

    root = tmp_path / "archive"
    path = sdist(root, "bomb", "1.0", {"bomb/__init__.py": ""}, kind="zip")
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("bomb-1.0/bomb/data.bin", b"\0" * (80 << 20))
    db = tmp_path / "index.sqlite"
    result = run_limited("archive", "index", str(root), "--db", str(db), "--jobs", "1", "--json")
    assert_clean_exit(result, [0])
    reason = sqlite3.connect(db).execute("SELECT reason FROM artifacts").fetchone()[0]
    assert "zip bomb" in reason


def test_corrupt_index_is_bad_input(tmp_path: Path) -> None:
    db = tmp_path / "index.sqlite"
    db.write_bytes(b"SQLite format 3\0" + os.urandom(4000))
    result = run_limited("archive", "report", "--db", str(db))
    assert_clean_exit(result, [3])
    assert "index.sqlite" in result.stderr


def test_deb_helper_builds_a_readable_package(tmp_path: Path) -> None:
    """The crafted .debs are real ones: dpkg-deb lists the crafted one's files."""
    import shutil
    import subprocess

    if shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb is not installed")
    path = deb(tmp_path, "python3-zope.d", {"zope/d/__init__.py": ""}, dist_name="zope.d")
    listing = subprocess.run(["dpkg-deb", "-c", str(path)], capture_output=True, text=True, check=True).stdout
    assert f"./{SITE}/zope/d/__init__.py" in listing


def test_names_not_in_utf8_are_indexed_escaped_and_resume(tmp_path: Path) -> None:
    """An artifact whose file name, and a .deb whose member names, are not UTF-8 (os and tarfile
    give such bytes as surrogate escapes, which SQLite TEXT cannot hold): the run exits 0, the
    name is kept with the bytes written as \\xNN, the .deb is recorded (indexed or refused, with
    its reason), and a second run finds all three indexed."""
    root = tmp_path / "archive"
    good = wheel(root, "good", {"good/__init__.py": "G = 1\n"})
    odd_name = root / os.fsdecode(b"odd\xff-1.0-py3-none-any.whl")
    odd_name.write_bytes(good.read_bytes())  # the same bytes under a name that is not UTF-8
    raw_deb(root, "python3-odd_1_all.deb", [dir_info("./"), file_info(f"./{SITE}/odd\udcff/__init__.py", b"")])
    db = tmp_path / "index.sqlite"
    first = run_limited("archive", "index", str(root), "--db", str(db), "--jobs", "1", "--json")
    assert_clean_exit(first, [0])
    summary = json.loads(first.stdout)
    assert summary["found"] == 3 and summary["duplicates"] == 1, summary  # one batch: the odd name is good's bytes
    connection = sqlite3.connect(db)
    paths = {path for (path,) in connection.execute("SELECT path FROM artifact_paths")}
    assert str(root / "odd\\xff-1.0-py3-none-any.whl") in paths
    statuses = dict(connection.execute("SELECT filename, status FROM artifacts"))
    assert statuses["python3-odd_1_all.deb"] in ("indexed", "refused"), statuses
    connection.close()
    again = run_limited("archive", "index", str(root), "--db", str(db), "--jobs", "1", "--json")
    assert_clean_exit(again, [0])
    summary = json.loads(again.stdout)
    assert summary["skipped"] == 3 and summary["indexed"] == 0, summary
