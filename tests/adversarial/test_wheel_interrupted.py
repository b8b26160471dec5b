"""kill -9 at moments spread over a wheel rewrite: the output is never half-written. ``strip -o``
leaves either no output or a complete, valid one; ``strip --in-place`` leaves either the input
as it was or the complete result (the archive is written beside, validated, then renamed)."""

from __future__ import annotations

import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from nstree import PKGUTIL_INIT, install_wheel
from wheelbuild import RawMember, raw_wheel

SEED = 20261202
TRIALS = 6


def _big_wheel(directory: Path) -> Path:
    rng = random.Random(SEED)
    blob = rng.randbytes(32 << 20)  # incompressible: the rewrite copies 32 MiB
    return raw_wheel(directory, [RawMember("okns/__init__.py", PKGUTIL_INIT.encode()),
                                 RawMember("okns/blob.bin", blob, method=0)])


def _start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ns_strip", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def _valid(wheel: Path, scratch: Path) -> bool:
    install_wheel(wheel, scratch)
    return not (scratch / "okns" / "__init__.py").exists() and (scratch / "okns" / "blob.bin").exists()


def test_kill_during_strip_leaves_no_half_written_output(tmp_path):
    wheel = _big_wheel(tmp_path / "in")
    original = wheel.read_bytes()
    started = time.monotonic()
    reference = tmp_path / "reference"
    reference.mkdir()
    assert _start("strip", "-o", str(reference), str(wheel)).wait(120) == 0
    duration = time.monotonic() - started
    expected = (reference / wheel.name).read_bytes()
    rng = random.Random(SEED)
    outcomes = set()
    for trial in range(TRIALS):
        out = tmp_path / f"out{trial}"
        out.mkdir()
        in_place = tmp_path / f"in-place{trial}" / wheel.name
        in_place.parent.mkdir()
        shutil.copy2(wheel, in_place)
        delay = duration * (trial + rng.random()) / TRIALS
        processes = [_start("strip", "-o", str(out), str(wheel)), _start("strip", "--in-place", str(in_place))]
        time.sleep(delay)
        for process in processes:
            process.send_signal(signal.SIGKILL)
            process.wait(60)
        written = out / wheel.name
        if written.exists():
            assert written.read_bytes() == expected, f"trial {trial}: a partial output"
            outcomes.add("written")
        else:
            outcomes.add("absent")
        assert in_place.read_bytes() in (original, expected), f"trial {trial}: a partial in-place result"
        assert wheel.read_bytes() == original
    assert _valid(reference / wheel.name, tmp_path / "site")
    # Some kill landed before the rename: the test saw the interrupted case, not only finished runs.
    assert "absent" in outcomes, outcomes
