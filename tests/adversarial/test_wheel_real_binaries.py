"""Large real binary wheels pass every wheel command (issue 12, §4): the bomb rule refused
pillow 13.0.0 for a 224:1 library; with members decompressed in bounded chunks and stopped at
their declared size, no ratio is judged, and real wheels pass while the bombs of
test_wheel_hostile.py are still refused.

The wheels (tests/adversarial/real-wheels.txt, pinned by hash) come from a cache that
.ci/setup.d/40-wheels.sh fills in CI; elsewhere the test downloads them itself with pip.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from hostile import assert_clean_exit, run_limited

REQUIREMENTS = Path(__file__).with_name("real-wheels.txt")
PROJECTS = ("pillow", "numpy", "scipy")


@pytest.fixture(scope="module")
def real_wheels() -> dict[str, Path]:
    cache = Path(os.environ.get("NS_STRIP_REAL_WHEELS")
                 or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ns-strip-tests" / "real-wheels")
    found = {project: sorted(cache.glob(f"{project}-*.whl")) for project in PROJECTS}
    if not all(found.values()):
        cache.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--require-hashes",
             "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux_2_17_x86_64", "--python-version", "3.11",
             "-d", str(cache), "-r", str(REQUIREMENTS)],
            capture_output=True, text=True, timeout=600,
        )
        if result.returncode != 0:
            if os.environ.get("CI") == "true":
                pytest.fail(f"cannot download the real wheels:\n{result.stderr}")
            pytest.skip(f"cannot download the real wheels: {result.stderr.strip().splitlines()[-1:]}")
        found = {project: sorted(cache.glob(f"{project}-*.whl")) for project in PROJECTS}
    return {project: paths[-1] for project, paths in found.items()}


def test_the_premise_pillow_holds_a_member_the_old_ratio_rule_refused(real_wheels):
    with zipfile.ZipFile(real_wheels["pillow"]) as archive:
        ratios = [(info.file_size / info.compress_size, info.file_size) for info in archive.infolist()
                  if info.compress_size]
    assert any(ratio > 200 and size > 1 << 20 for ratio, size in ratios)


@pytest.mark.parametrize("project", PROJECTS)
def test_a_real_binary_wheel_passes_every_wheel_command(project, real_wheels, tmp_path):
    wheel = real_wheels[project]
    for args in (["scan"], ["check"], ["import-names", "--json"]):
        result = run_limited(*args, str(wheel), timeout=300)
        assert_clean_exit(result, {0})
    result = run_limited("ext", "--json", str(wheel), timeout=300)
    assert_clean_exit(result, {0, 1})
    extensions = json.loads(result.stdout)["extensions"]
    assert extensions and all(entry["format"] == "elf" for entry in extensions)
    # strip -o: nothing to strip, so a byte-for-byte copy, validated again as it is written.
    out = tmp_path / "out"
    out.mkdir()
    result = run_limited("strip", "-o", str(out), str(wheel), timeout=300)
    assert_clean_exit(result, {0})
    assert (out / wheel.name).read_bytes() == wheel.read_bytes()
