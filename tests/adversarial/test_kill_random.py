"""kill -9 at random moments of a strip, not only at step boundaries: whatever the moment, the
next run recovers and ends with a tree byte for byte the same as an uninterrupted strip's.

The moments are drawn with a fixed seed from the length of an uninterrupted run measured in the
same test (the duration is only used to place the kills, never asserted)."""

from __future__ import annotations

import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hostile import assert_clean_exit, run_limited
from nstree import PKG_RESOURCES_INIT, PKGUTIL_INIT, add_distribution, snapshot
from test_strip import assert_records_true

from ns_strip.journal import JOURNAL_DIR

# Trials go on until this many kills have landed inside the apply (most of the others land
# in start-up and the scan), at most MAX_TRIALS.
WANTED_IN_APPLY = 4
MAX_TRIALS = 30
SEED = 20261202


def build(site: Path) -> Path:
    """Enough namespaces that the apply is a good part of the run (a few hundred steps)."""
    for index in range(40):
        init = PKGUTIL_INIT if index % 2 else PKG_RESOURCES_INIT
        add_distribution(site, f"ns{index % 8}.part{index}", {
            f"ns{index % 8}/__init__.py": init,
            f"ns{index % 8}/__pycache__/__init__.cpython-311.pyc": b"pyc",
            f"ns{index % 8}/part{index}/__init__.py": f"X = {index}\n",
        })
        add_distribution(site, f"deep{index}", {
            f"deep{index}/a/__init__.py": PKGUTIL_INIT,
            f"deep{index}/a/b/__init__.py": PKGUTIL_INIT,
            f"deep{index}/a/b/mod.py": "",
        })
    return site


@pytest.fixture(scope="module")
def states(tmp_path_factory) -> tuple[Path, dict, dict, float]:
    pristine = build(tmp_path_factory.mktemp("pristine") / "site")
    done = tmp_path_factory.mktemp("done") / "site"
    shutil.copytree(pristine, done, symlinks=True)
    began = time.monotonic()
    assert_clean_exit(run_limited("strip", str(done)), {0})
    return pristine, snapshot(pristine), snapshot(done), time.monotonic() - began


def test_kill_at_random_moments_then_recover(states, tmp_path):
    pristine, original, stripped, duration = states
    assert original != stripped
    moments = random.Random(SEED)
    interrupted_apply = 0
    trial = 0
    while interrupted_apply < WANTED_IN_APPLY and trial < MAX_TRIALS:
        trial += 1
        site = tmp_path / f"trial{trial}"
        shutil.copytree(pristine, site, symlinks=True)
        proc = subprocess.Popen([sys.executable, "-m", "ns_strip", "strip", str(site)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(moments.uniform(0.4, 1.05) * duration)
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
        assert b"Traceback" not in err
        in_apply = proc.returncode == -signal.SIGKILL and (site / JOURNAL_DIR).exists()
        interrupted_apply += in_apply
        rerun = run_limited("strip", str(site))
        assert_clean_exit(rerun, {0})
        assert ("Recovered an interrupted strip" in rerun.stdout) == in_apply
        assert snapshot(site) == stripped, f"trial {trial}"
        assert_records_true(site)
        if in_apply:
            # And a third run changes nothing: the recovered tree is a finished one.
            assert_clean_exit(run_limited("strip", str(site)), {0})
            assert snapshot(site) == stripped
        shutil.rmtree(site)
    # The kills did land inside the apply, not only before or after it.
    assert interrupted_apply >= WANTED_IN_APPLY, (interrupted_apply, trial)
