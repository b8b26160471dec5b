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
