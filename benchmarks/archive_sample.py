"""Download the pinned real sample that ``docs/archive.rst``'s census and ``benchmarks/archive.py``
run on: wheels from PyPI (``archive_sample.txt``, one ``name==version`` a line) and Debian 12
``.deb`` files of the same families (``archive_sample_debs.txt``, one package name a line).

    python benchmarks/archive_sample.py [--dest benchmarks/data/archive-sample] [--jobs 2]

Each wheel is fetched alone with ``pip download --no-deps --only-binary=:all:`` (for this
interpreter and platform), so one project without a matching wheel does not stop the rest;
those are listed at the end. Files already present are not fetched again.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _pinned(path: Path) -> list[str]:
    return [line.split("#")[0].strip() for line in path.read_text().splitlines() if line.split("#")[0].strip()]


def _have(dest: Path, requirement: str) -> bool:
    name, _, version = requirement.partition("==")
    stem = name.replace("-", "_").replace(".", "_").lower()
    return any(
        f.name.lower().startswith(f"{stem}-{version.lower()}-") or f.name.lower().startswith(f"{stem}-{version.lower()}.")
        for f in dest.iterdir()
    )


def download_wheel(requirement: str, dest: Path) -> str | None:
    """None when done, else why not."""
    if _have(dest, requirement):
        return None
    result = subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "-d", str(dest),
         requirement],
        capture_output=True, text=True, timeout=600,
    )
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        return lines[-1] if lines else f"pip exited {result.returncode}"
    return None


def download_debs(packages: list[str], dest: Path) -> list[str]:
    missing = []
    for package in packages:
        if any(f.name.startswith(f"{package}_") for f in dest.glob("*.deb")):
            continue
        result = subprocess.run(["apt-get", "download", "-q", package], cwd=dest, capture_output=True, text=True)
        if result.returncode != 0:
            missing.append(f"{package}: {result.stderr.strip().splitlines()[-1:] or 'failed'}")
    return missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dest", type=Path, default=HERE / "data" / "archive-sample")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--no-debs", action="store_true")
    parser.add_argument("--no-wheels", action="store_true")
    parser.add_argument("--list", type=Path, default=HERE / "archive_sample.txt", help="pinned wheels, name==version")
    parser.add_argument("--debs-list", type=Path, default=HERE / "archive_sample_debs.txt", help="Debian packages")
    args = parser.parse_args(argv)
    wheels, debs = args.dest / "wheels", args.dest / "debs"
    wheels.mkdir(parents=True, exist_ok=True)
    debs.mkdir(parents=True, exist_ok=True)
    failed: list[str] = []
    if not args.no_wheels:
        requirements = _pinned(args.list)
        with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
            for requirement, why in zip(requirements, pool.map(lambda r: download_wheel(r, wheels), requirements)):
                if why:
                    failed.append(f"{requirement}: {why}")
    if not args.no_debs and args.debs_list.exists():
        if shutil.which("apt-get") is None:
            failed.append("apt-get not found: no .deb files fetched")
        else:
            failed += download_debs(_pinned(args.debs_list), debs)
    for line in failed:
        print(f"not fetched: {line}", file=sys.stderr)
    print(f"{len(list(wheels.glob('*.whl')))} wheels in {wheels}, {len(list(debs.glob('*.deb')))} .debs in {debs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
