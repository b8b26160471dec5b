"""``ns-strip ext`` over a large directory (issue 15): the same answer whatever the design does to
be fast. A large directory is read in forked processes (``--jobs``), binaries through ``pread``
on the descriptor safeio opened, and modules a tree does not need are not imported. No timings
here: speed is measured by ``benchmarks/run.py --only ext``.
"""

from __future__ import annotations

import io
import json
import os
import shlex
import shutil
import signal
import stat
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from ext_toolchain import build_elf, run_cli
from hypothesis import given, settings
from hypothesis import strategies as st

from ns_strip import forkmap
from ns_strip.binfmt import MalformedBinary, Reader, elf, read_binary
from ns_strip.distributions import is_metadata_dir
from ns_strip.extsources import METADATA_DIR_SUFFIXES
from ns_strip.safeio import NotRegularFileError, open_regular_sized

TAG = "cpython-311-x86_64-linux-gnu"


@pytest.fixture(scope="module")
def big_tree(tmp_path_factory) -> Path:
    """Over two processes' worth of extensions (forkmap.MIN_ITEMS_PER_PROCESS each), of every
    kind ext reports on: good ones, a wrong init name (NS201), untagged (NS204), garbage and
    truncated binaries (NS205), a plain library (skipped), a FIFO (NS121), a link (skipped), a
    namespace takeover (NS202), and a distribution owning some of them."""
    site = tmp_path_factory.mktemp("site")
    built = build_elf(tmp_path_factory.mktemp("built") / f"good.{TAG}.so", "good")
    data = built.read_bytes()
    for index in range(3 * forkmap.MIN_ITEMS_PER_PROCESS):
        directory = site / f"pkg{index % 7}"
        directory.mkdir(exist_ok=True)
        (directory / "__init__.py").write_text("")
        (directory / f"good.{TAG}.so").write_bytes(data)
        (directory / f"mod{index}.{TAG}.so").write_bytes(data)  # exports PyInit_good: NS201
    (site / "untagged.so").write_bytes(data)
    (site / f"garbage.{TAG}.so").write_bytes(b"\x7fELF" + b"\xff" * 60)
    (site / f"truncated.{TAG}.so").write_bytes(data[:3000])
    plain = build_elf(tmp_path_factory.mktemp("lib") / "libplain.so", "x", "plain_fn")
    (site / "libplain.so").write_bytes(plain.read_bytes())
    os.mkfifo(site / f"fifo.{TAG}.so")
    os.symlink(f"pkg0/good.{TAG}.so", site / f"link.{TAG}.so")
    (site / "nsp" / "portion").mkdir(parents=True)
    (site / "nsp" / "portion" / "mod.py").write_text("")
    shutil.copyfile(built, site / f"nsp.{TAG}.so")
    info = site / "owner-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: owner\nVersion: 1.0\n")
    (info / "RECORD").write_text(f"pkg0/good.{TAG}.so,,\nuntagged.so,,\n{info.name}/METADATA,,\n{info.name}/RECORD,,\n")
    return site


def run_ext(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ns_strip", "ext", *args], capture_output=True, text=True,
                          timeout=120)  # fmt: skip


@pytest.mark.parametrize("options", [["--json"], [], ["-v"], ["--json", "--select", "NS2"]])
def test_jobs_give_byte_for_byte_the_serial_output(big_tree, options):
    serial = run_ext("--jobs", "1", *options, str(big_tree))
    assert serial.returncode == 1, serial.stderr  # NS201, NS202 and NS205 are errors
    assert "Traceback" not in serial.stderr
    for jobs in ("2", "3"):
        parallel = run_ext("--jobs", jobs, *options, str(big_tree))
        assert (parallel.returncode, parallel.stdout, parallel.stderr) == (
            serial.returncode, serial.stdout, serial.stderr)
    default = run_ext(*options, str(big_tree))
    assert (default.returncode, default.stdout, default.stderr) == (serial.returncode, serial.stdout, serial.stderr)


def test_the_big_tree_has_every_kind_of_answer(big_tree, monkeypatch):
    """The equality above means something only if the tree exercises every path, in children."""
    started = []
    child = forkmap._Child

    class Spy(child):
        def __init__(self, function, share) -> None:
            started.append(len(share))
            child.__init__(self, function, share)

    monkeypatch.setattr(forkmap, "_Child", Spy)
    code, out, _ = run_cli("ext", "--json", "--jobs", "2", str(big_tree))
    assert code == 1 and len(started) == 1 and started[0] > forkmap.MIN_ITEMS_PER_PROCESS
    payload = json.loads(out)
    codes = {finding["code"] for finding in payload["findings"]}
    assert {"NS121", "NS201", "NS202", "NS204", "NS205"} <= codes
    by_path = {row["path"]: row for row in payload["extensions"]}
    assert len(by_path) > 2 * forkmap.MIN_ITEMS_PER_PROCESS
    assert by_path[f"pkg0/good.{TAG}.so"]["exported"] == ["good"]
    owned = [f for f in payload["findings"] if f["path"] == "untagged.so"]
    assert owned and owned[0]["distributions"] == ["owner"]
    assert f"link.{TAG}.so" not in by_path and "libplain.so" not in by_path


def test_jobs_must_be_positive(tmp_path):
    code, _, err = run_cli("ext", "--jobs", "0", str(tmp_path))
    assert code == 2 and "--jobs must be at least 1" in err


def test_a_directory_of_extensions_alone_does_not_import_metadata_or_init_parsing(tmp_path):
    built = build_elf(tmp_path / f"alone.{TAG}.so", "alone")
    assert built.exists()
    script = ("import sys\nfrom ns_strip.cli import main\ncode = main(['ext', sys.argv[1]])\n"
              "print(sorted(m for m in ('ns_strip.distributions', 'ns_strip.initfile', 'email', 'json') "
              "if m in sys.modules))\n")  # fmt: skip
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("__path__ = __import__('pkgutil').extend_path(__path__, __name__)\n")
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True)
    assert result.stdout.strip().splitlines()[-1] == "['ns_strip.initfile']"


@pytest.mark.parametrize("name", ["foo-1.0.dist-info", "foo.egg-info", "foo-1.0.dist-info.bak", "foo", "dist-info",
                                  ".dist-info", "foo.EGG-INFO", "foo.egg-info-x"])
def test_metadata_suffixes_agree_with_distributions(name):
    assert name.endswith(METADATA_DIR_SUFFIXES) == is_metadata_dir(name)


# -- fork_map ----------------------------------------------------------------------------------

ITEMS = list(range(5 * forkmap.MIN_ITEMS_PER_PROCESS))


def no_child_left() -> bool:
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


@pytest.mark.parametrize("processes", [1, 2, 3, 8])
def test_fork_map_is_the_serial_map(processes):
    parent = os.getpid()
    results = forkmap.fork_map(lambda item: (item * item, os.getpid() == parent), ITEMS, processes)
    pids = forkmap.fork_map(lambda item: (item, os.getpid()), ITEMS, processes)
    assert [value for value, _ in results] == [item * item for item in ITEMS]
    in_parent = sum(1 for _, here in results if here)
    if processes == 1:
        assert in_parent == len(ITEMS)
    else:  # the children did their shares; this process at least its own (it unpickles theirs)
        shares = len({pid for _, pid in pids})
        assert 1 < shares <= processes
        assert len(ITEMS) // shares <= in_parent <= len(ITEMS) - (shares - 1) * forkmap.MIN_ITEMS_PER_PROCESS
    assert no_child_left()


def test_fork_map_keeps_small_inputs_in_this_process():
    parent = os.getpid()
    few = list(range(2 * forkmap.MIN_ITEMS_PER_PROCESS - 1))
    assert all(forkmap.fork_map(lambda item: os.getpid() == parent, few, 4))


@pytest.mark.parametrize("failure", ["raise", "kill", "exit"])
def test_a_failing_child_has_its_share_computed_again_here(failure):
    parent = os.getpid()

    def work(item: int) -> int:
        if os.getpid() != parent and item == len(ITEMS) - 1:
            if failure == "raise":
                raise RuntimeError("only in the child")
            if failure == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            os._exit(0)  # gone without a word: no results on the pipe
        return item + 1

    assert forkmap.fork_map(work, ITEMS, 2) == [item + 1 for item in ITEMS]
    assert no_child_left()


def test_an_exception_in_the_parent_kills_and_reaps_the_children():
    parent = os.getpid()

    def work(item: int) -> int:
        if os.getpid() == parent and item == 3:
            raise KeyboardInterrupt
        if os.getpid() != parent:
            signal.pause()  # a child that would never finish on its own
        return item

    with pytest.raises(KeyboardInterrupt):
        forkmap.fork_map(work, ITEMS, 3)
    assert no_child_left()


def test_an_exception_everywhere_is_the_serial_exception():
    def work(item: int) -> int:
        if item == len(ITEMS) - 2:
            raise ValueError(f"item {item}")
        return item

    with pytest.raises(ValueError, match=f"item {len(ITEMS) - 2}"):
        forkmap.fork_map(work, ITEMS, 2)
    assert no_child_left()


# -- reading through the descriptor --------------------------------------------------------------


def test_reader_of_fd_reads_what_the_stream_reader_reads(tmp_path):
    built = build_elf(tmp_path / f"same.{TAG}.so", "same")
    fd, size = open_regular_sized(built)
    try:
        assert size == built.stat().st_size
        from_fd = read_binary(Reader.of_fd(fd, size), ("PyInit_same",))
    finally:
        os.close(fd)
    with built.open("rb") as stream:
        assert read_binary(stream, ("PyInit_same",)) == from_fd
    assert from_fd.init_symbols == ("PyInit_same",)


def test_a_file_that_shrinks_after_the_open_is_malformed_not_a_crash(tmp_path):
    built = build_elf(tmp_path / f"shrinks.{TAG}.so", "shrinks")
    fd, size = open_regular_sized(built)
    try:
        os.truncate(built, 100)
        with pytest.raises(MalformedBinary, match="file ended early while being read"):
            read_binary(Reader.of_fd(fd, size))
    finally:
        os.close(fd)


def test_open_regular_sized_refuses_what_open_regular_refuses(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    os.symlink("fifo", tmp_path / "link")
    with pytest.raises(NotRegularFileError, match="FIFO"):
        open_regular_sized(tmp_path / "fifo")
    with pytest.raises(NotRegularFileError):
        open_regular_sized(tmp_path / "link")
    assert stat.S_ISFIFO(os.lstat(tmp_path / "fifo").st_mode)  # looked at, never opened for reading


# -- leaving without the interpreter's teardown ---------------------------------------------------


def test_ext_output_is_whole_when_it_leaves_without_teardown(big_tree):
    """ext's command line leaves by os._exit after flushing: a large JSON output (many pipe
    buffers' worth) arrives whole, and an error still arrives on stderr with its exit code."""
    result = subprocess.run([sys.executable, "-m", "ns_strip", "ext", "--json", str(big_tree)],
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 1 and len(result.stdout) > 64 << 10
    assert len(json.loads(result.stdout)["extensions"]) > 2 * forkmap.MIN_ITEMS_PER_PROCESS
    missing = subprocess.run([sys.executable, "-m", "ns_strip", "ext", str(big_tree / "nothing.so")],
                             capture_output=True, text=True, timeout=120)  # fmt: skip
    assert missing.returncode == 2 and missing.stderr.startswith("ns-strip: error: ") and not missing.stdout


def test_ext_into_a_closed_pipe_is_not_an_error(big_tree):
    script = f"{shlex.quote(sys.executable)} -m ns_strip ext --json {shlex.quote(str(big_tree))} | head -c 10"
    result = subprocess.run(["bash", "-o", "pipefail", "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout == '{\n  "findi' and "Traceback" not in result.stderr


@pytest.mark.parametrize(("loadavg", "cpus", "expected"), [
    (b"0.10 0.20 0.30 1/300 4242\n", 2, 2),  # only this process runs: both CPUs
    (b"2.00 2.00 2.00 2/300 4242\n", 2, 1),  # one other task: one CPU left
    (b"4.00 4.00 4.00 9/300 4242\n", 2, 1),  # busy: this process alone, never 0
    (b"1.00 1.00 1.00 3/300 4242\n", 8, 6),
    (b"garbage\n", 4, 4),  # unreadable: every CPU it may use
])
def test_idle_cpus_leaves_out_the_cpus_others_run_on(monkeypatch, loadavg, cpus, expected):
    import builtins
    import io

    real_open = builtins.open
    monkeypatch.setattr(builtins, "open", lambda path, *a, **k: io.BytesIO(loadavg) if path == "/proc/loadavg"
                        else real_open(path, *a, **k))  # fmt: skip
    monkeypatch.setattr(forkmap, "available_cpus", lambda: cpus)
    assert forkmap.idle_cpus() == expected


def test_no_process_to_be_had_means_computed_here(monkeypatch):
    """A process limit (RLIMIT_NPROC) or a full descriptor table makes fork or pipe fail: the
    shares are computed in this process, never a traceback."""
    forks = []

    def refuse() -> int:
        forks.append(1)
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", refuse)
    before = len(os.listdir("/proc/self/fd"))
    assert forkmap.fork_map(lambda item: item * 3, ITEMS, 4) == [item * 3 for item in ITEMS]
    assert forks == [1] and len(os.listdir("/proc/self/fd")) == before  # tried once, no pipe leaked


# -- the dynamic segment decoded in bulk -------------------------------------------------------

def _dynamic_one_by_one(names: dict[int, str], entries: list[tuple[int, int]]) -> dict[str, list[int]] | None:
    """The reference: the segment read entry by entry up to DT_NULL (None: no DT_NULL)."""
    tags: dict[str, list[int]] = {}
    for tag, value in entries:
        if tag == 0:
            return tags
        if tag in names:
            values = tags.setdefault(names[tag], [])
            if len(values) < elf.MAX_NEEDED:
                values.append(value)
    return None


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0, 1, 1, 1, 4, 5, 6, 10, 14, 0x6FFFFEF5, 3, -7, 2**31 - 1]),
                          st.integers(0, 2**32 - 1)), max_size=60),
       st.integers(0, 3), st.booleans())
def test_bulk_dynamic_decoding_is_the_entry_by_entry_reading(entries, needed_repeats, terminated):
    # Up to 1,200 DT_NEEDED entries first (past MAX_NEEDED), then the drawn ones, then maybe a
    # DT_NULL (the drawn ones may hold one earlier).
    entries = [(1, 7)] * (needed_repeats * 400) + entries + ([(0, 0)] if terminated else [])
    layout = struct.Struct("<qQ")
    raw = b"".join(layout.pack(tag, value) for tag, value in entries)
    view = elf._ElfView.__new__(elf._ElfView)
    view._reader = Reader(io.BytesIO(raw))
    expected = _dynamic_one_by_one(elf._DYNAMIC_TAGS, entries[:elf.MAX_DYNAMIC_ENTRIES + 1])
    if expected is None:
        with pytest.raises(MalformedBinary, match="not terminated by DT_NULL"):
            view._read_dynamic(elf._DYNAMIC_TAGS, layout, 0, len(raw))
    else:
        assert view._read_dynamic(elf._DYNAMIC_TAGS, layout, 0, len(raw)) == expected
