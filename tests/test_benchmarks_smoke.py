"""The benchmark harness runs end to end at its smallest size and reports every case.

No timing is asserted: numbers depend on the machine. What is asserted is that each case ran
(ns-strip and its baseline both succeeded, so the row has numbers) or says clearly why not.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
# The tools the baselines run; CI installs them (.ci/run), so there a missing one is a failure.
TOOLS = ("find", "xargs", "grep", "cp", "zip", "unzip", "readelf", "gcc")
CASES = (
    "start-up (ns-strip --version)",
    "scan 30 dists",
    "strip 30 dists",
    "ext 20 .so files",
    "ext 20 .so files, --jobs 1",
    "ext one 1 MB .so vs one",
    "readelf one 1 MB .so vs one",
    "wheel strip,",
    "registry add/remove, 1 process",
    "registry add/remove, 2 processes",
)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict]:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"benchmark baselines need {', '.join(missing)} in CI")
        pytest.skip(f"not installed: {', '.join(missing)}")
    work = tmp_path_factory.mktemp("bench")
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "run.py"), "--quick", "--data-dir", str(work / "data"),
         "--json", str(work / "results.json")],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout, json.loads((work / "results.json").read_text())


def test_table_has_a_row_for_every_case(quick_run: tuple[str, dict]) -> None:
    table, _ = quick_run
    lines = table.splitlines()
    assert lines[0].startswith("machine: ") and "Python" in lines[0]
    header = next(line for line in lines if line.startswith("case "))
    for column in ("ns-strip", "baseline", "ratio", "CPU ratio", "goal", "peak RSS", "result"):
        assert column in header
    for case in CASES:
        assert any(line.startswith(case) for line in lines), f"no row for {case!r} in:\n{table}"


def test_every_case_ran_both_sides(quick_run: tuple[str, dict]) -> None:
    _, results = quick_run
    rows = results["rows"]
    # scan has two baselines, and at the largest size a row of what it does besides when asked
    # and the two rows of its floor (benchmarks/scan_floor.py, plain and through safeio)
    assert len(rows) == len(CASES) + 4
    assert any(row["case"].endswith("--all-records --check-modules") for row in rows)
    assert any(row["case"].endswith("floor: Python walk + reads") for row in rows)
    assert any(row["case"].endswith("floor: Python walk + safeio reads") for row in rows)
    for row in rows:
        assert "unavailable" not in row, f"{row['case']}: {row.get('unavailable')}"
        assert row["ns_strip_seconds"] and row["baseline_seconds"], row["case"]
        assert row["ns_strip_peak_mib"] > 0
        assert row["verdict"] in ("met", "info") or row["verdict"].startswith("MISSED")
    registry = [row for row in rows if row["case"].startswith("registry")]
    assert all(row["ops_per_second"] > 0 for row in registry)


def test_unavailable_case_is_reported_not_fatal(tmp_path: Path) -> None:
    """A baseline or a command that fails makes its row 'not available', with the reason."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import run as harness
    finally:
        sys.path.remove(str(BENCHMARKS))
    failing = harness.Side.fixed("ns-strip", [sys.executable, "-c", "import sys; sys.exit('boom')"])
    row = harness.Row("broken case", failing, harness.Side.fixed("true", ["true"]), harness.Goal("<= 1x", max_ratio=1.0))
    harness.run_rows([row], 1, lambda text: None)
    assert row.verdict() == "not available"
    assert "boom" in (row.unavailable or "")
    table = harness.format_table([row], harness.machine())
    assert "not available: broken case:" in table
