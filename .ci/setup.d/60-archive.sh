# shellcheck shell=bash
# 'ns-strip archive' (issue 15): Dask for the cluster tests, and the pinned real sample that
# tests/test_archive_real.py checks known facts about. Sourced by .ci/run with the venv first
# on PATH. Dask is pinned here rather than in the test extra: it is an optional engine with a
# large dependency tree that only these tests need.
python3 -m pip install -q 'dask[distributed]==2026.8.0'

export NS_STRIP_ARCHIVE_SAMPLE=${NS_STRIP_ARCHIVE_SAMPLE:-/tmp/ns-strip-archive-sample}
mkdir -p "$NS_STRIP_ARCHIVE_SAMPLE"
python3 benchmarks/archive_sample.py --dest "$NS_STRIP_ARCHIVE_SAMPLE" --list benchmarks/archive_ci_sample.txt \
    --debs-list benchmarks/archive_ci_sample_debs.txt

# Debian's python3-distributed 2022.12 beside ns-strip: a venv of Debian's Python that sees the
# system packages, with nothing from PyPI (ns-strip reads core metadata with the standard
# library, so Debian 12's python3-packaging 23.0 is enough).
export NS_STRIP_DEBIAN_DASK_PYTHON=${NS_STRIP_DEBIAN_DASK_PYTHON:-/tmp/ns-strip-debian-dask/bin/python}
if [ ! -x "$NS_STRIP_DEBIAN_DASK_PYTHON" ]; then
    /usr/bin/python3 -m venv --system-site-packages "${NS_STRIP_DEBIAN_DASK_PYTHON%/bin/python}"
    "$NS_STRIP_DEBIAN_DASK_PYTHON" -m pip install -q --no-deps -e .
fi
