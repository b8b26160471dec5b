# Sourced by .ci/run. The real binary wheels of tests/adversarial/test_wheel_real_binaries.py
# (pillow, numpy, scipy: about 60 MB), downloaded once into a cache the test reads, pinned by
# hash. A failed download fails the run here rather than skipping the test.
export NS_STRIP_REAL_WHEELS=${NS_STRIP_REAL_WHEELS:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/ns-strip-tests/real-wheels}
mkdir -p "$NS_STRIP_REAL_WHEELS"
python3 -m pip download -q --no-deps --only-binary=:all: --require-hashes \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --python-version 3.11 \
  -d "$NS_STRIP_REAL_WHEELS" -r tests/adversarial/real-wheels.txt
