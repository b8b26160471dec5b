"""Hostile and broken wheels: each is refused with exit 3 and one line naming the member, and
nothing is written (no output file, no temporary file, the input untouched)."""

from __future__ import annotations

import hashlib
import stat
import struct
import warnings
import zipfile
import zlib
from pathlib import Path

import pytest

from nstree import PKGUTIL_INIT, record_hash, run_cli
from wheelbuild import RawMember, compress, craft_wheel, raw_wheel, record_rows

from ns_strip import wheels

OK = [("okns/__init__.py", PKGUTIL_INIT.encode()), ("okns/mod.py", b"VALUE = 1\n")]


def _member(name: str, mode: int = 0o644) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, (2020, 2, 2, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (stat.S_IFREG | mode) << 16 if not stat.S_IFMT(mode) else mode << 16
    return info


def _replace_row(rows: list[str], path: str, new: str | None) -> list[str]:
    out = [row for row in rows if not row.startswith(path + ",")]
    return out + [new] if new is not None else out


def _overlapping(directory: Path) -> Path:
    """Member b.py's local header and data lie inside member a.py's data (a stored member):
    the directory lists both, each is individually well formed."""
    def local(name: bytes, data: bytes) -> bytes:
        return struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 0, 0, 0x5442, zlib.crc32(data), len(data),
                           len(data), len(name), 0) + name + data

    def central(name: bytes, data: bytes, offset: int) -> bytes:
        return struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 0, 0, 0x5442, zlib.crc32(data), len(data),
                           len(data), len(name), 0, 0, 0, 0, 0o644 << 16, offset) + name

    dist_info = "ovl-1.0.dist-info"
    b_data = b"B = 2\n"
    a_data = local(b"ovl/b.py", b_data)
    plain = [
        (f"{dist_info}/METADATA", b"Metadata-Version: 2.1\nName: ovl\nVersion: 1.0\n"),
        (f"{dist_info}/WHEEL", b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"),
    ]
    rows = record_rows([("ovl/a.py", a_data), ("ovl/b.py", b_data), *plain], dist_info)
    plain.append((f"{dist_info}/RECORD", ("\n".join(rows) + "\n").encode()))
    body = local(b"ovl/a.py", a_data)
    entries = [central(b"ovl/a.py", a_data, 0), central(b"ovl/b.py", b_data, len(body) - len(a_data))]
    for name, data in plain:
        entries.append(central(name.encode(), data, len(body)))
        body += local(name.encode(), data)
    directory_bytes = b"".join(entries)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(entries), len(entries), len(directory_bytes), len(body), 0)
    wheel = directory / "ovl-1.0-py3-none-any.whl"
    wheel.write_bytes(body + directory_bytes + end)
    return wheel


def _hostile(kind: str, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    if kind == "dotdot":
        return craft_wheel(directory, [*OK, (_member("../evil.py"), b"pwned = 1\n")])
    if kind == "dotdot-inside":
        return craft_wheel(directory, [*OK, (_member("okns/../../evil.py"), b"pwned = 1\n")])
    if kind == "absolute":
        return craft_wheel(directory, [*OK, (_member("/tmp/evil.py"), b"pwned = 1\n")])
    if kind == "backslash":
        return craft_wheel(directory, [*OK, (_member("okns\\..\\..\\evil.py"), b"pwned = 1\n")])
    if kind == "duplicate":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # zipfile warns, and writes it anyway
            return craft_wheel(directory, [*OK, ("okns/mod.py", b"OTHER = 2\n")])
    if kind == "symlink":
        return craft_wheel(directory, [*OK, (_member("okns/link.py", stat.S_IFLNK | 0o777), b"/etc/passwd")])
    if kind == "device":
        return craft_wheel(directory, [*OK, (_member("okns/dev", stat.S_IFCHR | 0o644), b"")])
    if kind == "unlisted":
        return craft_wheel(directory, OK, spoil_record=lambda rows: _replace_row(rows, "okns/mod.py", None))
    if kind == "missing":
        return craft_wheel(directory, OK, spoil_record=lambda rows: rows + [f"okns/ghost.py,{record_hash(b'')},0"])
    if kind == "hash":
        bad = f"okns/mod.py,{record_hash(b'VALUE = 2')},10"
        return craft_wheel(directory, OK, spoil_record=lambda rows: _replace_row(rows, "okns/mod.py", bad))
    if kind == "size":
        bad = f"okns/mod.py,{record_hash(b'VALUE = 1' + bytes([10]))},11"
        return craft_wheel(directory, OK, spoil_record=lambda rows: _replace_row(rows, "okns/mod.py", bad))
    if kind == "lying-size-bomb":
        # Declares 1,000 bytes; its deflate stream inflates to 24 MiB.
        return raw_wheel(directory, [*[RawMember(name, data) for name, data in OK],
                                     RawMember("okns/zeros.bin", bytes(1000), stored=compress(bytes(24 << 20), 8))])
    if kind == "overlap":
        return _overlapping(directory)
    if kind == "not-a-zip":
        wheel = directory / "junk-1.0-py3-none-any.whl"
        wheel.write_bytes(hashlib.sha256(b"junk").digest() * 64)
        return wheel
    if kind == "two-dist-infos":
        return craft_wheel(directory, [*OK, ("other-2.0.dist-info/METADATA", b"Name: other\n")])
    raise AssertionError(kind)


REFUSALS = {
    "dotdot": "member '../evil.py' climbs out of the archive with '..'",
    "dotdot-inside": "member 'okns/../../evil.py' climbs out of the archive with '..'",
    "absolute": "member '/tmp/evil.py' has an absolute name",
    "backslash": "holds a backslash",
    "duplicate": "member 'okns/mod.py' appears 2 times",
    "symlink": "member 'okns/link.py' is a symbolic link",
    "device": "member 'okns/dev' is a special file",
    "unlisted": "RECORD does not match the archive: okns/mod.py is not mentioned in RECORD",
    "missing": "RECORD lists 'okns/ghost.py', which is not in the archive",
    "hash": "RECORD does not match the archive: hash / size of okns/mod.py didn't match RECORD",
    "size": "RECORD does not match the archive: hash / size of okns/mod.py didn't match RECORD",
    "lying-size-bomb": "member 'okns/zeros.bin' decompresses to more than the 1000 bytes it declares",
    "overlap": "members 'ovl/a.py' and 'ovl/b.py' overlap in the archive",
    "not-a-zip": "not a readable zip archive",
    "two-dist-infos": "Wheel doesn't contain exactly one .dist-info directory",
}


@pytest.mark.parametrize("kind", sorted(REFUSALS))
@pytest.mark.parametrize("command", ["strip", "scan", "import-names", "check"])
def test_hostile_wheel_is_refused_and_nothing_is_written(kind, command, tmp_path):
    wheel = _hostile(kind, tmp_path / "in")
    before = wheel.read_bytes()
    out = tmp_path / "out"
    out.mkdir()
    extra = {"strip": ["-o", str(out)], "import-names": ["--write", "-o", str(out)]}.get(command, [])
    code, stdout, err = run_cli(command, str(wheel), *extra)
    assert code == 3, (stdout, err)
    assert err.count("\n") == 1 and err.startswith(f"ns-strip: error: {wheel}: "), err
    assert REFUSALS[kind] in err
    assert "Traceback" not in err
    assert list(out.iterdir()) == [], "an output or temporary file was left behind"
    assert wheel.read_bytes() == before
    assert sorted(p.name for p in wheel.parent.iterdir()) == [wheel.name]


def test_total_size_cap(tmp_path, monkeypatch):
    """Members that each compress plausibly but add up past the cap (lowered here so the
    test stays small; the real cap is several GiB)."""
    monkeypatch.setattr(wheels.archive, "MAX_TOTAL_UNCOMPRESSED", 1 << 20)
    random_looking = b"".join(hashlib.sha256(str(i).encode()).digest() for i in range(40000))  # 1.28 MB
    wheel = craft_wheel(tmp_path, [*OK, ("okns/blob.bin", random_looking)])
    before = wheel.read_bytes()
    code, _, err = run_cli("strip", str(wheel), "--in-place")
    assert code == 3
    assert "members add up to" in err and "likely zip bomb" in err
    assert wheel.read_bytes() == before and list(tmp_path.iterdir()) == [wheel]


def test_highly_compressible_members_that_tell_their_size_are_accepted(tmp_path):
    """No ratio rule (issue 12: pillow's libraries compress 224:1): a member that decompresses
    to exactly what it declares is read in bounded chunks, whatever its ratio."""
    wheel = craft_wheel(tmp_path, [*OK, ("okns/table.txt", b"0" * 500_000), ("okns/zeros.bin", bytes(24 << 20))],
                        compresslevel=9)
    code, _, err = run_cli("scan", str(wheel))
    assert code == 0, err


def test_a_file_that_is_not_named_like_a_wheel_is_refused(tmp_path):
    wheel = craft_wheel(tmp_path, OK)
    renamed = wheel.rename(tmp_path / "renamed.whl")
    code, _, err = run_cli("scan", str(renamed))
    assert code == 3 and "not a wheel file name" in err


def test_missing_wheel_is_a_usage_error(tmp_path):
    code, _, err = run_cli("scan", str(tmp_path / "absent-1.0-py3-none-any.whl"))
    assert code == 2 and "no such file" in err
