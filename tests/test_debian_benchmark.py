"""The dpkg trigger benchmark runs end to end at a small size (no timing is asserted: the numbers
are the machine's; what is asserted is that both sides ran and the bookkeeping was undone)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from debhelper_support import require_tools

BENCHMARK = Path(__file__).resolve().parent.parent / "benchmarks" / "dpkg_trigger.py"


def test_dpkg_trigger_benchmark_reports_both_sides(tmp_path: Path) -> None:
    require_tools("dpkg", "dpkg-deb")
    results = tmp_path / "results.json"
    done = subprocess.run([sys.executable, str(BENCHMARK), "--packages", "4", "--repetitions", "2",
                           "--json", str(results)], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    row = next(line for line in done.stdout.splitlines() if line.startswith("dpkg -i + -P of 4 packages"))
    assert row.split()[-1] in ("ok", "MISSED")
    data = json.loads(results.read_text())
    assert len(data["with_addon_seconds"]) == len(data["without_seconds"]) == 2
    assert all(seconds > 0 for seconds in data["with_addon_seconds"] + data["without_seconds"])
    assert data["goal"] == 1.2 and data["ratio"] > 0
