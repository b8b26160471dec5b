"""The archive benchmark runs end to end at a smoke size, and the index's progress line shows
on a terminal only (no timing is asserted anywhere)."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
from pathlib import Path

from test_archive_support import wheel

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def test_benchmark_smoke_run_reports_every_row(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "archive.py"), "--count", "40", "--no-dask", "--elf", "0",
         "--repetitions", "1", "--data-dir", str(tmp_path / "data"), "--json", str(tmp_path / "r.json")],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    results = json.loads((tmp_path / "r.json").read_text())
    rows = results["rows"]
    assert [row["case"] for row in rows] == [
        "archive index 40 wheels, 1 process", "archive index 40 wheels, 2 vs 1 process",
        "archive report, 40 artifacts"]
    for row in rows:
        assert "unavailable" not in row, row
        assert row["ns_strip_median"] > 0 and row["baseline_median"] > 0 and row["ops_per_second"] > 0
    assert "archive report, 40 artifacts" in result.stdout
    # Where the time goes: one probe run per engine, every artifact through a timed task.
    assert [part["run"] for part in results["breakdown"]] == ["local, 1 process", "local, 2 processes"]
    for part in results["breakdown"]:
        assert part["artifacts"] == 40 and part["tasks"] >= 1, part
        assert part["task_cpu"] > 0 and part["coordinator_cpu"] > part["write_cpu"] > 0, part
    assert "where the time goes (40 artifacts" in result.stdout


def _run_on_terminal(argv: list[str]) -> str:
    main, child = pty.openpty()
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=child,
                               close_fds=True)
    os.close(child)
    output = b""
    while True:
        ready, _, _ = select.select([main], [], [], 120)
        if not ready:
            process.kill()
            break
        try:
            chunk = os.read(main, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    process.wait(timeout=120)
    os.close(main)
    assert process.returncode == 0, output
    return output.decode(errors="replace")


def test_progress_shows_on_a_terminal_unless_quiet(tmp_path: Path) -> None:
    for number in range(30):
        wheel(tmp_path / "a", f"p{number}", {f"p{number}.py": ""})
    command = [sys.executable, "-m", "ns_strip", "archive", "index", str(tmp_path / "a"), "--jobs", "1", "--db"]
    shown = _run_on_terminal([*command, str(tmp_path / "1.sqlite")])
    assert "\rindexing: " in shown and "/30 (refused 0" in shown
    quiet = _run_on_terminal([*command, str(tmp_path / "2.sqlite"), "-q"])
    assert "indexing" not in quiet
    piped = subprocess.run([*command, str(tmp_path / "3.sqlite")], capture_output=True, text=True, timeout=120)
    assert "indexing:" not in piped.stderr


def test_interrupted_local_run_keeps_its_work_and_resumes(tmp_path: Path) -> None:
    """Ctrl-C (SIGINT to the whole process group, workers included): one line, exit 130, the
    committed artifacts kept; the same command then completes the index to what an
    uninterrupted run gives."""
    import signal
    import sqlite3
    import time

    from ns_strip.archive.store import IndexStore

    total = 6000  # enough that the run is still going, even on a loaded machine, when a batch is committed
    for number in range(total):
        wheel(tmp_path / "a", f"p{number}", {f"p{number}/__init__.py": f"N = {number}\n" * 50})
    command = [sys.executable, "-m", "ns_strip", "archive", "index", str(tmp_path / "a"), "--jobs", "2", "--db"]
    db = tmp_path / "i.sqlite"
    process = subprocess.Popen([*command, str(db)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while True:
        assert process.poll() is None, "the run ended before it could be interrupted"
        assert time.monotonic() < deadline
        try:
            if sqlite3.connect(db, timeout=5).execute("SELECT count(*) FROM artifacts").fetchone()[0] >= 10:
                break
        except sqlite3.OperationalError:
            pass
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130 and err.strip() == "ns-strip: interrupted", err
    kept = sqlite3.connect(db).execute("SELECT count(*) FROM artifacts").fetchone()[0]
    assert 10 <= kept < total
    resumed = subprocess.run([*command, str(db), "--json"], capture_output=True, text=True, timeout=300)
    assert json.loads(resumed.stdout)["skipped"] == kept
    reference = tmp_path / "r.sqlite"
    subprocess.run([*command, str(reference)], capture_output=True, timeout=300, check=True)
    with IndexStore(db, create=False) as one, IndexStore(reference, create=False) as other:
        assert one.canonical() == other.canonical()
