"""Hostile wheels through every command that reads a wheel (issue 11's adversarial suite):
zip slip, duplicates, links and devices, bombs of every compression method, local headers that
lie about the central directory, lying RECORDs and planted journals.

Every one is refused with exit 3 and one line naming the wheel, by ``scan``, ``strip -o``,
``strip --in-place``, ``check``, ``ext``, ``import-names`` and ``import-names --write``; nothing
is written (no output, no temporary file, the input unchanged). The bombs run in children under
a memory limit smaller than what they inflate to. What is accepted (a member that is merely
highly compressible, case twins) is written out and the output installed by installer, with
its own RECORD validation, into a scratch directory.
"""

from __future__ import annotations

import bz2
import concurrent.futures
import lzma
import os
import shutil
import stat
import zipfile
import zlib
from pathlib import Path

import pytest

from hostile import Sentinel, assert_clean_exit, fingerprint, run_limited
from nstree import PKGUTIL_INIT, install_wheel, record_hash, run_cli
from wheelbuild import LZMA_FILTER, RawMember, compress, lzma_header, raw_wheel

OK = [RawMember("okns/__init__.py", PKGUTIL_INIT.encode()), RawMember("okns/mod.py", b"VALUE = 1\n")]
WHEEL_NAME = "crafted-1.0-py3-none-any.whl"
# What the bombs inflate to: more than the memory a child may use.
BOMB_SIZE = 640 << 20
BOMB_MEMORY = 384 << 20

COMMANDS = {
    "scan": lambda wheel, out: ["scan", str(wheel)],
    "strip-o": lambda wheel, out: ["strip", "-o", str(out), str(wheel)],
    "strip-in-place": lambda wheel, out: ["strip", "--in-place", str(wheel)],
    "check": lambda wheel, out: ["check", str(wheel)],
    "ext": lambda wheel, out: ["ext", str(wheel)],
    "import-names": lambda wheel, out: ["import-names", str(wheel)],
    "import-names-write": lambda wheel, out: ["import-names", "--write", "-o", str(out), str(wheel)],
}


def _zeros_deflated(size: int) -> bytes:
    """A raw deflate stream of ``size`` zero bytes, built from one fully flushed 1 MiB block
    repeated (each block stands alone), then a final empty block: quick to make at any size."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(bytes(1 << 20)) + compressor.flush(zlib.Z_FULL_FLUSH)
    assert size % (1 << 20) == 0
    return block * (size >> 20) + b"\x03\x00"  # a final fixed-Huffman block holding nothing


def _zeros_streamed(compressor, size: int) -> bytes:
    chunk = bytes(16 << 20)
    return b"".join(compressor.compress(chunk) for _ in range(size // len(chunk))) + compressor.flush()


@pytest.fixture(scope="module")
def bomb_streams() -> dict[int, bytes]:
    """Each method's data for BOMB_SIZE zero bytes (bzip2 and lzma made in two threads)."""
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        bzip2 = pool.submit(_zeros_streamed, bz2.BZ2Compressor(9), BOMB_SIZE)
        lzma_stream = pool.submit(_zeros_streamed, lzma.LZMACompressor(lzma.FORMAT_RAW, filters=[LZMA_FILTER]),
                                  BOMB_SIZE)
        deflate = _zeros_deflated(BOMB_SIZE)
        return {zipfile.ZIP_DEFLATED: deflate, zipfile.ZIP_BZIP2: bzip2.result(),
                zipfile.ZIP_LZMA: lzma_header() + lzma_stream.result()}


def _run_everywhere(wheel: Path, tmp_path: Path, memory: int | None = None) -> dict[str, object]:
    """Every command on the wheel (strip --in-place on a copy), each in a memory-limited child;
    two at a time."""
    jobs = {}
    for name, command in COMMANDS.items():
        target = wheel
        if name == "strip-in-place":
            copy_dir = tmp_path / "in-place"
            copy_dir.mkdir(parents=True, exist_ok=True)
            target = Path(shutil.copy2(wheel, copy_dir / wheel.name))
        out = tmp_path / f"out-{name}"
        out.mkdir(parents=True, exist_ok=True)
        jobs[name] = (command(target, out), target, out)
    kwargs = {"memory": memory} if memory else {}
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        runs = {name: pool.submit(run_limited, *args, timeout=60, **kwargs) for name, (args, _, _) in jobs.items()}
        return {name: (runs[name].result(), target, out) for name, (_, target, out) in jobs.items()}


def _assert_refused_everywhere(wheel: Path, tmp_path: Path, expected: str, memory: int | None = None) -> None:
    """Refused by every command, with nothing written. With ``memory`` (the bombs) every command
    runs in a child under that limit; else in this process, and ``scan`` once in a child."""
    before = wheel.read_bytes()
    if memory is None:
        outcomes = {}
        for name, command in COMMANDS.items():
            out = tmp_path / f"out-{name}"
            out.mkdir(parents=True, exist_ok=True)
            code, stdout, err = run_cli(*command(wheel, out))
            outcomes[name] = (code, err, wheel, out)
        child = run_limited("scan", str(wheel), timeout=60)
        assert_clean_exit(child, {3})
        assert expected in child.stderr, child.stderr
    else:
        outcomes = {name: (result.returncode, result.stderr, target, out)
                    for name, (result, target, out) in _run_everywhere(wheel, tmp_path, memory).items()}
    for name, (code, err, target, out) in outcomes.items():
        assert "Traceback" not in err
        assert code == 3, (name, err)
        assert err.count("\n") == 1 and err.startswith(f"ns-strip: error: {target}: "), (name, err)
        assert expected in err, (name, err)
        assert list(out.iterdir()) == [], f"{name} left something in its output directory"
        assert target.read_bytes() == before, f"{name} changed its input"
        assert sorted(p.name for p in target.parent.iterdir()) == [wheel.name], f"{name} left a file beside it"


# -- bombs -------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", [zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA],
                         ids=["deflate", "bzip2", "lzma"])
def test_a_member_that_declares_1000_bytes_and_inflates_to_640_mb(method, bomb_streams, tmp_path):
    """Issue 11, item 7: decompressed in bounded chunks, stopped past its declared size."""
    sentinel = Sentinel(tmp_path / "outside")
    bomb = RawMember("okns/zeros.bin", bytes(1000), method=method, stored=bomb_streams[method])
    wheel = raw_wheel(tmp_path / "in", [*OK, bomb])
    _assert_refused_everywhere(wheel, tmp_path, "member 'okns/zeros.bin' decompresses to more than the 1000 bytes "
                                                "it declares", memory=BOMB_MEMORY)
    sentinel.assert_unchanged()


@pytest.mark.parametrize("method", [zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA],
                         ids=["deflate", "bzip2", "lzma"])
def test_a_bomb_as_the_record_or_an_init(method, bomb_streams, tmp_path):
    """The members every command reads whole (RECORD, an __init__.py) are bounded too."""
    bomb = RawMember("okns/__init__.py", PKGUTIL_INIT.encode(), method=method, stored=bomb_streams[method])
    wheel = raw_wheel(tmp_path / "in", [bomb, OK[1]])
    _assert_refused_everywhere(wheel, tmp_path, "decompresses to more than", memory=BOMB_MEMORY)


def test_members_that_declare_more_than_the_total_cap(tmp_path):
    """Two bzip2 members that each declare 2 GiB (no method limits bzip2's ratio): refused from
    the directory, before anything is decompressed."""
    tiny = bz2.compress(b"")
    members = [RawMember(f"okns/big{i}.bin", b"", method=zipfile.ZIP_BZIP2, stored=tiny, declared=2 << 30)
               for i in range(2)]
    wheel = raw_wheel(tmp_path / "in", [*OK, *members])
    _assert_refused_everywhere(wheel, tmp_path, "likely zip bomb")


def test_a_record_declaring_more_than_is_read_of_one(tmp_path):
    """RECORD is read whole: one that declares 65 MiB is refused before a byte is decompressed."""
    wheel = raw_wheel(tmp_path / "in", OK, record_fields={"method": zipfile.ZIP_BZIP2, "declared": 65 << 20})
    _assert_refused_everywhere(wheel, tmp_path, "member 'crafted-1.0.dist-info/RECORD': is 68157440 bytes, over the")


def test_a_stored_member_with_a_lying_size(tmp_path):
    stored = RawMember("okns/data.bin", bytes(1000), method=zipfile.ZIP_STORED, stored=bytes(1 << 20))
    wheel = raw_wheel(tmp_path / "in", [*OK, stored])
    _assert_refused_everywhere(wheel, tmp_path, "is stored uncompressed but declares 1000 bytes in 1048576")


def test_a_deflated_member_declaring_more_than_deflate_can_produce(tmp_path):
    member = RawMember("okns/data.bin", b"", stored=zlib.compress(b"", 9)[2:-4], declared=1 << 30)
    wheel = raw_wheel(tmp_path / "in", [*OK, member])
    _assert_refused_everywhere(wheel, tmp_path, "more than deflate can produce")


@pytest.mark.parametrize("method", [zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA, zipfile.ZIP_STORED],
                         ids=["deflate", "bzip2", "lzma", "stored"])
def test_a_member_shorter_than_it_declares(method, tmp_path):
    data = b"VALUE = 2\n" * 100
    member = RawMember("okns/short.py", data, method=method, stored=compress(data[:500], method), declared=1000)
    wheel = raw_wheel(tmp_path / "in", [*OK, member])
    if method == zipfile.ZIP_STORED:
        _assert_refused_everywhere(wheel, tmp_path, "is stored uncompressed but declares 1000 bytes in 500")
    else:
        _assert_refused_everywhere(wheel, tmp_path, "decompresses to 500 bytes, not the 1000 it declares")


# -- names, kinds, headers, RECORD, journals -----------------------------------------------------

def _row(member: str, data: bytes) -> str:
    return f"{member},{record_hash(data)},{len(data)}"


HOSTILE = {
    # zip slip
    "dotdot": ([RawMember("../evil.py", b"pwned = 1\n")], "climbs out of the archive"),
    "dotdot-inside": ([RawMember("okns/../../evil.py", b"pwned = 1\n")], "climbs out of the archive"),
    "absolute": ([RawMember("/tmp/evil.py", b"pwned = 1\n")], "has an absolute name"),
    "backslash": ([RawMember("okns\\..\\..\\evil.py", b"pwned = 1\n")], "holds a backslash"),
    "drive-letter": ([RawMember("C:/evil.py", b"pwned = 1\n")], "has an absolute name"),
    "drive-relative": ([RawMember("c:evil.py", b"pwned = 1\n")], "has an absolute name"),
    "empty-part": ([RawMember("okns//evil.py", b"pwned = 1\n")], "is not a normal path"),
    "dot-part": ([RawMember("okns/./evil.py", b"pwned = 1\n")], "is not a normal path"),
    # duplicates and clashes
    "duplicate": ([RawMember("okns/mod.py", b"OTHER = 2\n")], "appears 2 times"),
    "data-twin": ([RawMember("crafted-1.0.data/purelib/okns/mod.py", b"OTHER = 2\n")], "both install as"),
    "file-and-dir": ([RawMember("okns/mod.py/inner.py", b"X = 1\n")], "both a file and a directory"),
    # links and special files
    "symlink": ([RawMember("okns/link.py", b"/etc/passwd", mode=stat.S_IFLNK | 0o777)], "is a symbolic link"),
    "symlink-to-dir": ([RawMember("okns/up", b"../..", mode=stat.S_IFLNK | 0o777)], "is a symbolic link"),
    "char-device": ([RawMember("okns/zero", b"", mode=stat.S_IFCHR | 0o666)], "is a special file"),
    "block-device": ([RawMember("okns/sda", b"", mode=stat.S_IFBLK | 0o660)], "is a special file"),
    "fifo": ([RawMember("okns/queue", b"", mode=stat.S_IFIFO | 0o644)], "is a special file"),
    "socket": ([RawMember("okns/sock", b"", mode=stat.S_IFSOCK | 0o644)], "is a special file"),
    # methods and flags
    "unknown-method": ([RawMember("okns/x.py", b"X = 1\n", method=99, stored=b"X = 1\n")],
                       "unsupported compression method 99"),
    "encrypted": ([RawMember("okns/x.py", b"X = 1\n", local={"flags": 0x801})], "encryption flag"),
    # local headers that disagree with the central directory
    "local-name": ([RawMember("okns/x.py", b"X = 1\n", local={"name": b"okns/y.py"})],
                   "has another name in its local header"),
    "local-method": ([RawMember("okns/x.py", b"X = 1\n", local={"method": 0})], "compression method"),
    "local-size": ([RawMember("okns/x.py", b"X = 1\n", local={"file_size": 99})], "size"),
    "local-crc": ([RawMember("okns/x.py", b"X = 1\n", local={"crc": 1234})], "CRC"),
    # lying RECORDs
    "unlisted": ([RawMember("okns/x.py", b"X = 1\n", in_record=False)], "okns/x.py is not mentioned in RECORD"),
    "wrong-hash": ([RawMember("okns/x.py", b"X = 1\n", stored=zlib.compress(b"X = 2\n")[2:-4],
                              crc=zlib.crc32(b"X = 2\n"))], "hash / size of okns/x.py didn't match RECORD"),
    "ghost-row": ([], "RECORD lists 'okns/ghost.py', which is not in the archive"),
    "climbing-row": ([], "RECORD lists '../../etc/passwd', which is not in the archive"),
    # planted journals
    "journal-member": ([RawMember(".ns-strip-journal/plan.json", b'{"moves": [["/etc/passwd", "x"]]}')],
                       "NS120 member '.ns-strip-journal/plan.json'"),
    "journal-dir-member": ([RawMember(".ns-strip-journal/", b"", mode=stat.S_IFDIR | 0o755, in_record=False)],
                           "NS120 member '.ns-strip-journal/'"),
    "journal-in-purelib": ([RawMember("crafted-1.0.data/purelib/.ns-strip-journal/plan.json", b"{}")],
                           "NS120 member 'crafted-1.0.data/purelib/.ns-strip-journal/plan.json'"),
    "journal-row": ([], "NS120 RECORD row '.ns-strip-journal/plan.json'"),
}
EXTRA_ROWS = {
    "ghost-row": [_row("okns/ghost.py", b"")],
    "climbing-row": [_row("../../etc/passwd", b"")],
    "journal-row": [_row(".ns-strip-journal/plan.json", b"{}")],
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_a_hostile_wheel_is_refused_by_every_command(kind, tmp_path):
    members, expected = HOSTILE[kind]
    wheel = raw_wheel(tmp_path / "in", [*OK, *members], record_extra=EXTRA_ROWS.get(kind, ()))
    _assert_refused_everywhere(wheel, tmp_path, expected)


@pytest.mark.parametrize("content", [b"", b"PK\x05\x06" + bytes(18), b"not a zip at all\n" * 10],
                         ids=["empty", "empty-zip", "text"])
def test_a_wheel_that_is_not_one_is_refused_by_every_command(content, tmp_path):
    """Issue 11, item 9: ``ext`` exits 3 like ``scan`` and ``strip`` (it exited 2)."""
    wheel = tmp_path / "in" / WHEEL_NAME
    wheel.parent.mkdir()
    wheel.write_bytes(content)
    expected = "Wheel doesn't contain" if content.startswith(b"PK") else "not a readable zip archive"
    _assert_refused_everywhere(wheel, tmp_path, expected)


def test_a_truncated_wheel_is_refused(tmp_path):
    wheel = raw_wheel(tmp_path / "in", [*OK, RawMember("okns/data.py", os.urandom(4096))])
    wheel.write_bytes(wheel.read_bytes()[:-40])
    _assert_refused_everywhere(wheel, tmp_path, "not a readable zip archive")


# -- what is accepted is written true ------------------------------------------------------------


def _installs_cleanly(wheel: Path, scratch: Path) -> None:
    """installer's RECORD validation where it has one (1.0+), then a real install."""
    from installer.sources import WheelFile

    with WheelFile.open(wheel) as source:
        if hasattr(source, "validate_record"):
            source.validate_record()
    install_wheel(wheel, scratch)


@pytest.mark.parametrize("kind", ["compressible", "case-twins", "nested-journal-name"])
def test_what_is_accepted_is_written_out_valid(kind, tmp_path):
    extra = {
        # 24 MiB of zeros in 24 KiB: a ratio of 1000:1, honest about its size.
        "compressible": [RawMember("okns/zeros.bin", bytes(24 << 20), stored=_zeros_deflated(24 << 20))],
        # Distinct files on Linux, which is where ns-strip's site dirs are.
        "case-twins": [RawMember("okns/Mod.py", b"UPPER = 1\n"), RawMember("okns/MOD.py", b"SHOUT = 1\n")],
        # Only a journal at the top of the site dir is ns-strip's.
        "nested-journal-name": [RawMember("okns/data/.ns-strip-journal/notes.txt", b"hello\n")],
    }[kind]
    wheel = raw_wheel(tmp_path / "in", [*OK, *extra])
    results = _run_everywhere(wheel, tmp_path)
    for name, (result, _, _) in results.items():
        assert_clean_exit(result, {0, 1})
    for name in ("strip-o", "strip-in-place", "import-names-write"):
        result, target, out = results[name]
        assert result.returncode == 0, (name, result.stderr)
        written = target if name == "strip-in-place" else out / wheel.name
        installed = tmp_path / name / "site"
        _installs_cleanly(written, installed)
        for member in extra:
            assert (installed / member.name).read_bytes() == member.data
        # strip removes the pure pkgutil init; import-names --write keeps it.
        assert (installed / "okns" / "__init__.py").exists() == (name == "import-names-write")


@pytest.mark.parametrize("row", [".ns-strip-journal/plan.json", "okns/../.ns-strip-journal/old/1"])
def test_an_installed_record_listing_a_journal_is_refused(row, tmp_path):
    """The wheel's planted journal, once installed (by a tool that did not refuse it): its
    RECORD rows name the journal, and every command refuses the tree before recovery could
    trust it (NS120)."""
    from nstree import add_distribution

    site = tmp_path / "site"
    dist_info = add_distribution(site, "okns-portion", {"okns/__init__.py": PKGUTIL_INIT})
    with open(dist_info / "RECORD", "a") as record:
        record.write(f"{row},{record_hash(b'{}')},2\n")
    before = fingerprint(site)
    for command in ("scan", "strip", "check", "import-names", "ext"):
        result = run_limited(command, str(site), timeout=60)
        assert_clean_exit(result, {3})
        assert "NS120 RECORD entry" in result.stderr and f"{dist_info.name}/RECORD" in result.stderr, result.stderr
    assert fingerprint(site) == before


@pytest.mark.parametrize("local", [{"flags": 0x808, "crc": 0, "compress_size": 0, "file_size": 0},
                                   {"flags": 0x808, "compress_size": 0, "file_size": 0},
                                   {"compress_size": 0xFFFFFFFF, "file_size": 0xFFFFFFFF}],
                         ids=["data-descriptor", "data-descriptor-with-crc", "zip64-marks"])
def test_local_headers_that_leave_values_for_later_are_not_lies(local, tmp_path):
    """Streaming writers leave CRC and sizes (or only the sizes) to a data descriptor; ZIP64
    writers put 0xFFFFFFFF there: such local headers agree with the directory."""
    wheel = raw_wheel(tmp_path / "in", [OK[0], RawMember("okns/mod.py", b"VALUE = 1\n", local=local)])
    out = tmp_path / "out"
    out.mkdir()
    code, _, err = run_cli("strip", "-o", str(out), str(wheel))
    assert code == 0, err
    _installs_cleanly(out / wheel.name, tmp_path / "site")
    assert (tmp_path / "site" / "okns" / "mod.py").read_bytes() == b"VALUE = 1\n"


@pytest.mark.parametrize("count_field", [0xFFFF, 1000], ids=["count-unknown", "count-lies"])
def test_a_central_directory_of_300000_entries_is_refused_before_it_is_parsed(count_field, tmp_path):
    """zipfile would parse every entry (112 MB of memory for a 13 MB file): refused from the
    end record and a count of the entry signatures, whatever the entry count says."""
    import struct

    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 0, 0, 0, 0, 0, 0, 1, 0) + b"a"
    entry = struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0) + b"a"
    directory = entry * 300_000
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, count_field, count_field, len(directory), len(local), 0)
    wheel = tmp_path / "in" / WHEEL_NAME
    wheel.parent.mkdir()
    wheel.write_bytes(local + directory + end)
    _assert_refused_everywhere(wheel, tmp_path, "central directory of 300000 entries, more than the 200000")
