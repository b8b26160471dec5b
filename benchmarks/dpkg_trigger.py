"""What the registry costs dpkg: install and purge N packages built with dh-ns-strip, against
the same packages without the bookkeeping, in the same run.

Each package puts one portion in the shared namespace ``nsbench`` (a legacy pkgutil
``__init__.py`` upstream). Built "with the add-on", it is what dh_ns_strip makes of it: the
namespace file stripped by ``ns-strip strip`` and the manifest written by ``ns-strip manifest``,
shipped in ``/usr/share/ns-strip/manifests``. The baseline is the same payload without the
manifest: the namespace needs no file either way, so the difference is the bookkeeping alone
(the file trigger and its one ``ns-strip registry sync`` per dpkg run).

Both sets go into scratch roots that have python3-ns-strip's real trigger and maintainer
scripts (``debian/python3-ns-strip.*``) installed, by ``dpkg --root --force-script-chrootless``:
one ``dpkg -i`` of all N, then one ``dpkg -P`` of all N, timed together; the two sides
alternate, and the ratio of the medians is reported. Goal: bookkeeping adds at most 20%.

    python benchmarks/dpkg_trigger.py [--packages 200] [--repetitions 3] [--json FILE]
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHECKOUT = HERE.parent
SITE = "usr/lib/python3/dist-packages"
NAMESPACE = "nsbench"
GOAL = 1.20
PKGUTIL_INIT = "__path__ = __import__('pkgutil').extend_path(__path__, __name__)\n"


def run(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
    if done.returncode != 0:
        raise SystemExit(f"dpkg_trigger.py: {' '.join(command[:4])} ... failed:\n{done.stdout}{done.stderr}")
    return done


def control(package: str, description: str, depends: str = "") -> str:
    text = textwrap.dedent(f"""\
        Package: {package}
        Version: 1.0
        Architecture: all
        Maintainer: ns-strip benchmarks <bench@example.org>
        Description: {description}
        """)
    return text + (f"Depends: {depends}\n" if depends else "")


def build_deb(tree: Path, out: Path) -> Path:
    run(["dpkg-deb", "--root-owner-group", "-Zgzip", "-z1", "--build", str(tree), str(out)])
    return out


def launcher(bin_dir: Path) -> dict[str, str]:
    """``ns-strip`` on PATH running this checkout with this interpreter, as the trigger calls it."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / "ns-strip"
    script.write_text(f'#!/bin/sh\nPYTHONPATH={CHECKOUT / "src"} exec {sys.executable} -m ns_strip "$@"\n')
    script.chmod(0o755)
    return {"PATH": f"{bin_dir}:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8"}


def trigger_package(work: Path) -> Path:
    """python3-ns-strip's trigger and scripts from debian/, without the module (PATH has it)."""
    tree = work / "python3-ns-strip"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN/control").write_text(control("python3-ns-strip", "the trigger of python3-ns-strip"))
    shutil.copy(CHECKOUT / "debian/python3-ns-strip.triggers", tree / "DEBIAN/triggers")
    for script in ("postinst", "postrm"):
        text = (CHECKOUT / f"debian/python3-ns-strip.{script}").read_text().replace("#DEBHELPER#\n", "")
        (tree / "DEBIAN" / script).write_text(text)
        (tree / "DEBIAN" / script).chmod(0o755)
    return build_deb(tree, work / "python3-ns-strip.deb")


def packages(work: Path, count: int) -> tuple[list[Path], list[Path]]:
    """(with the add-on, without): N .debs each, one portion of nsbench each."""
    sys.path.insert(0, str(CHECKOUT / "src"))
    from ns_strip.cli import main as ns_strip_main

    with_addon, without = [], []
    for number in range(count):
        name = f"python3-nsbench-p{number}"
        stage = work / "stage" / name
        site = stage / SITE
        (site / NAMESPACE / f"p{number}").mkdir(parents=True)
        (site / NAMESPACE / "__init__.py").write_text(PKGUTIL_INIT)
        (site / NAMESPACE / f"p{number}" / "__init__.py").write_text(f"NUMBER = {number}\n")
        (site / NAMESPACE / f"p{number}" / "core.py").write_text("def answer():\n    return 42\n")
        # What dh_ns_strip runs (in its own process too): strip the namespace file, write the manifest.
        argv = ["strip", "--quiet", "--root", str(stage), f"/{SITE}", "--manifest-package", name]
        if ns_strip_main(argv, stdout=io.StringIO()) != 0:
            raise SystemExit(f"dpkg_trigger.py: ns-strip strip failed for {name}")
        (stage / "DEBIAN").mkdir()
        (stage / "DEBIAN/control").write_text(control(name, "a portion of nsbench"))
        with_addon.append(build_deb(stage, work / "with" / f"{name}.deb"))
        shutil.rmtree(stage / "usr/share/ns-strip")
        if not any((stage / "usr/share").iterdir()):
            (stage / "usr/share").rmdir()
        without.append(build_deb(stage, work / "without" / f"{name}.deb"))
    return with_addon, without


class Root:
    def __init__(self, path: Path, env: dict[str, str], trigger_deb: Path) -> None:
        self.path = path
        self.env = env
        for sub in ("info", "updates", "triggers"):
            (path / "var/lib/dpkg" / sub).mkdir(parents=True)
        for name in ("status", "available"):
            (path / "var/lib/dpkg" / name).touch()
        self.dpkg("-i", str(trigger_deb))

    def dpkg(self, *args: str) -> None:
        run(["dpkg", f"--root={self.path}", "--log=/dev/null", "--force-script-chrootless", *args], env=self.env)

    def cycle(self, debs: list[Path]) -> float:
        """Install all, then purge all: wall seconds of both dpkg runs."""
        names = [deb.stem for deb in debs]
        start = time.perf_counter()
        self.dpkg("-i", *map(str, debs))
        self.dpkg("-P", *names)
        return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", type=int, default=200)
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args(argv)
    for tool in ("dpkg", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise SystemExit(f"dpkg_trigger.py: {tool} is needed (Debian package dpkg)")

    with tempfile.TemporaryDirectory(prefix="ns-strip-dpkg-bench-") as temporary:
        work = Path(temporary)
        env = launcher(work / "bin")
        trigger_deb = trigger_package(work)
        (work / "with").mkdir()
        (work / "without").mkdir()
        with_addon, without = packages(work, args.packages)
        roots = {"with": Root(work / "root-with", env, trigger_deb),
                 "without": Root(work / "root-without", env, trigger_deb)}
        sides = {"with": with_addon, "without": without}
        times: dict[str, list[float]] = {"with": [], "without": []}
        for repetition in range(args.repetitions):
            order = ("with", "without") if repetition % 2 == 0 else ("without", "with")
            for side in order:
                times[side].append(roots[side].cycle(sides[side]))
        # The bookkeeping was done, and undone: the last purge left an empty registry.
        listing = run(["ns-strip", "registry", "list", "--root", str(roots["with"].path), "--json"], env=env)
        left = json.loads(listing.stdout)["packages"]
        if left:
            raise SystemExit(f"dpkg_trigger.py: packages still registered after the purge: {left[:3]}")

    ours, baseline = statistics.median(times["with"]), statistics.median(times["without"])
    ratio = ours / baseline
    verdict = "ok" if ratio <= GOAL else "MISSED"
    case = f"dpkg -i + -P of {args.packages} packages, add-on vs without"
    print(f"{'case':<52} {'add-on':>9} {'without':>9} {'ratio':>7} {'goal':>7}  result")
    print(f"{case:<52} {ours:>8.2f}s {baseline:>8.2f}s {ratio:>7.2f} {GOAL:>7.2f}  {verdict}")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "case": case, "packages": args.packages, "repetitions": args.repetitions,
            "with_addon_seconds": times["with"], "without_seconds": times["without"],
            "ratio": ratio, "goal": GOAL, "result": verdict,
        }, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
