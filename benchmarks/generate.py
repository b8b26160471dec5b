"""Benchmark data: synthetic installed trees, real extension modules, a real setuptools wheel.

Everything is generated once and cached under ``benchmarks/data/`` (git-ignored): each
artifact lives in its own directory with a ``.complete`` stamp naming the parameters it was
made with, and is made in a temporary sibling that is renamed into place, so an interrupted
generation never leaves a half-made artifact that a later run would trust.

Run on its own to pre-generate the sites: ``python benchmarks/generate.py [--sizes 1000,5000]``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import importlib.util
import json
import marshal
import os
import random
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

# The test helpers write the same namespace inits and RECORD hashes the tests use.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from nstree import (  # noqa: E402
    FALLBACK_INIT,
    PKG_RESOURCES_INIT,
    PKGUTIL_INIT,
    build_setuptools_wheel,
    record_hash,
    write_project,
)

# Bumped whenever a generator changes what it writes, so stale caches are rebuilt.
GENERATOR_VERSION = 1
DEFAULT_DATA_DIR = Path(__file__).resolve().parent / "data"
SITE_DIR = "lib/python3/site-packages"  # three levels below the prefix, as installers lay it out
EXT_SUFFIX = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
PYC_TAG = sys.implementation.cache_tag

# A licence header above the declaration, as many real ones have: comments never block.
LICENSED_FALLBACK_INIT = "# Licensed under the Apache License, Version 2.0\n" + FALLBACK_INIT
HYBRID_INIT = PKGUTIL_INIT + "from .registry import register  # plugins register themselves\n"

# One slot per distribution, repeated: 40 % plain packages, the rest every namespace style, in
# roughly the mix a desktop system's site-packages shows.
STYLE_CYCLE = (
    ["regular"] * 8 + ["pkgutil"] * 3 + ["pkg_resources"] * 3 + ["nspkg"] * 2 + ["pep420"] * 2
    + ["hybrid", "fallback"]
)
INIT_OF_STYLE = {
    "pkgutil": PKGUTIL_INIT,
    "pkg_resources": PKG_RESOURCES_INIT,
    "hybrid": HYBRID_INIT,
    "fallback": LICENSED_FALLBACK_INIT,
}
# How many distributions of one style share one namespace.
PORTIONS_PER_NAMESPACE = 15


def pyc_bytes(source: str, filename: str) -> bytes:
    """A real timestamp-based ``.pyc`` for ``source`` (what compileall writes)."""
    code = compile(source, filename, "exec", dont_inherit=True)
    header = importlib.util.MAGIC_NUMBER + (0).to_bytes(4, "little")
    header += (0).to_bytes(4, "little") + (len(source.encode()) & 0xFFFFFFFF).to_bytes(4, "little")
    return header + marshal.dumps(code)


# -- cache ---------------------------------------------------------------------------------


def cached(target: Path, parameters: dict[str, object], make: Callable[[Path], None]) -> Path:
    """``target`` made by ``make(tmpdir)`` unless a complete one with these parameters exists."""
    stamp = dict(parameters, generator=GENERATOR_VERSION)
    stamp_file = target / ".complete"
    if stamp_file.is_file():
        try:
            if json.loads(stamp_file.read_text()) == stamp:
                return target
        except ValueError:
            pass  # a damaged stamp: make it again
    target.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    building.chmod(0o755)
    try:
        make(building)
        (building / ".complete").write_text(json.dumps(stamp))
        if target.exists():
            shutil.rmtree(target)
        os.rename(building, target)
    finally:
        if building.exists():
            shutil.rmtree(building)
    return target


# -- installed trees -----------------------------------------------------------------------


@dataclasses.dataclass
class _Dist:
    """The files of one distribution being written, and the RECORD rows for them."""

    site: Path
    name: str
    version: str = "1.0"
    rows: list[str] = dataclasses.field(default_factory=list)

    @property
    def dist_info(self) -> str:
        return f"{self.name}-{self.version}.dist-info"

    def write(self, rel: str, data: bytes) -> None:
        path = self.site / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.rows.append(f"{rel},{record_hash(data)},{len(data)}\n")

    def write_module(self, rel: str, source: str) -> None:
        """A ``.py`` file and its ``__pycache__`` bytecode, both in RECORD as pip writes them."""
        self.write(rel, source.encode())
        directory, _, filename = rel.rpartition("/")
        stem = filename[: -len(".py")]
        pyc = f"{directory}/__pycache__/{stem}.{PYC_TAG}.pyc" if directory else f"__pycache__/{stem}.{PYC_TAG}.pyc"
        self.write(pyc, pyc_bytes(source, rel))

    def finish(self, metadata: dict[str, bytes]) -> None:
        for filename, data in metadata.items():
            self.write(f"{self.dist_info}/{filename}", data)
        self.rows.append(f"{self.dist_info}/RECORD,,\n")
        (self.site / self.dist_info / "RECORD").write_text("".join(self.rows))


def _module_source(rng: random.Random, name: str) -> str:
    functions = "".join(
        f"\n\ndef {name}_f{k}(value, *, scale={k + 1}):\n"
        f"    \"\"\"Scale ``value`` by {k + 1} and add the module's offset.\"\"\"\n"
        f"    return value * scale + {rng.randrange(1000)}\n"
        for k in range(rng.randrange(2, 30))
    )
    return f'"""Module {name} of a synthetic distribution."""\n\nOFFSET = {rng.randrange(10**6)}\n{functions}'


def _namespace_of(style: str, index: int) -> str:
    group = index // (len(STYLE_CYCLE) * PORTIONS_PER_NAMESPACE)
    if style == "nspkg" and index % 2:
        return f"nspkg{group}.inner"  # nested: one nspkg.pth line per level
    return f"{style}{group}"


def _write_distribution(site: Path, index: int) -> None:
    rng = random.Random(index)
    style = STYLE_CYCLE[index % len(STYLE_CYCLE)]
    dist = _Dist(site, f"synthetic_{style}_{index:05d}")
    namespace = None if style == "regular" else _namespace_of(style, index)
    portion = f"portion{index:05d}"
    top = f"{namespace.replace('.', '/')}/{portion}" if namespace else f"pkg{index:05d}"

    if style in INIT_OF_STYLE:
        dist.write_module(f"{namespace}/__init__.py", INIT_OF_STYLE[style])
        if style == "hybrid":
            dist.write_module(f"{namespace}/registry.py", "def register(plugin):\n    return plugin\n")
    dist.write_module(f"{top}/__init__.py", f'"""{top}."""\nfrom .mod0 import OFFSET\n')
    for k in range(10):
        dist.write_module(f"{top}/mod{k}.py", _module_source(rng, f"mod{k}"))
    dist.write_module(f"{top}/sub/__init__.py", "")
    for k in range(4):
        dist.write_module(f"{top}/sub/helper{k}.py", _module_source(rng, f"helper{k}"))
    dist.write(f"{top}/py.typed", b"")
    if index % 10 == 0:
        dist.write(f"../../../bin/{dist.name}", f"#!/usr/bin/python3\nimport {top.replace('/', '.')}\n".encode())

    metadata = {
        "METADATA": f"Metadata-Version: 2.1\nName: {dist.name}\nVersion: {dist.version}\n".encode(),
        "WHEEL": b"Wheel-Version: 1.0\nGenerator: ns-strip-benchmarks\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        "INSTALLER": b"pip\n",
        "top_level.txt": (top.split("/")[0] + "\n").encode(),
    }
    if style in ("pkg_resources", "nspkg", "fallback"):
        parts = namespace.split(".")
        declared = [".".join(parts[: n + 1]) for n in range(len(parts))]
        metadata["namespace_packages.txt"] = "".join(f"{name}\n" for name in declared).encode()
    if style == "nspkg":
        dist.write(f"{dist.name}-{dist.version}-py3.11-nspkg.pth", _nspkg_pth(namespace).encode())
    dist.finish(metadata)


def _nspkg_pth(namespace: str) -> str:
    """The lines setuptools' ``install_lib`` writes, one per namespace level."""
    parts = namespace.split(".")
    lines = []
    for depth in range(1, len(parts) + 1):
        name = ".".join(parts[:depth])
        tup = repr(tuple(parts[:depth]))
        line = (
            "import sys, types, os;has_mfs = sys.version_info > (3, 5);"
            f"p = os.path.join(sys._getframe(1).f_locals['sitedir'], *{tup});"
            "importlib = has_mfs and __import__('importlib.util');"
            "has_mfs and __import__('importlib.machinery');"
            f"m = has_mfs and sys.modules.setdefault({name!r}, "
            "importlib.util.module_from_spec("
            f"importlib.machinery.PathFinder.find_spec({name!r}, [os.path.dirname(p)])));"
            f"m = m or sys.modules.setdefault({name!r}, types.ModuleType({name!r}));"
            "mp = (m or []) and m.__dict__.setdefault('__path__',[]);(p not in mp) and mp.append(p)"
        )
        if depth > 1:
            parent = ".".join(parts[: depth - 1])
            line += f";m and setattr(sys.modules[{parent!r}], {parts[depth - 1]!r}, m)"
        lines.append(line + "\n")
    return "".join(lines)


def make_site(prefix: Path, count: int) -> None:
    """``count`` distributions installed into ``prefix/lib/python3/site-packages``."""
    site = prefix / SITE_DIR
    site.mkdir(parents=True)
    workers = os.cpu_count() or 2
    # Creating files dominates; one process per core, each writing every n-th distribution.
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers) as pool:
        for done in pool.map(_write_distributions, [(site, range(w, count, workers)) for w in range(workers)]):
            assert done >= 0


def _write_distributions(job: tuple[Path, range]) -> int:
    site, indexes = job
    for index in indexes:
        _write_distribution(site, index)
    return len(indexes)


def site_tree(data_dir: Path, count: int) -> Path:
    """The prefix of a cached site with ``count`` distributions (the site dir is ``SITE_DIR`` below)."""
    return cached(data_dir / f"site-{count}", {"distributions": count}, lambda out: make_site(out, count))


# -- extension modules ---------------------------------------------------------------------


def _extension_source(module: str, padding: int) -> str:
    # The padding is initialised data, so the file really grows by that much.
    blob = f"const char {module}_data[{padding}] = {{1}};\n" if padding else ""
    helpers = "".join(f"static int helper{k}(int x) {{ return x * {k + 3} + {k}; }}\n" for k in range(8))
    calls = " + ".join(f"helper{k}(n)" for k in range(8))
    return (
        f"{blob}{helpers}"
        f"int {module}_compute(int n) {{ return {calls}; }}\n"
        f"__attribute__((visibility(\"default\"))) void *PyInit_{module}(void) {{ return 0; }}\n"
    )


def _compile_extension(directory: Path, module: str, padding: int) -> Path:
    source = directory / f"{module}.c"
    source.write_text(_extension_source(module, padding))
    target = directory / f"{module}{EXT_SUFFIX}"
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-O1", "-fvisibility=hidden", "-o", str(target), str(source)],
        check=True, capture_output=True, text=True,
    )
    source.unlink()
    return target


def make_extensions(out: Path, count: int) -> None:
    """``count`` real ELF extension modules of a few KB to about 100 KB, built in parallel."""
    jobs = [(f"mod{index:04d}", (index % 50) * 2048) for index in range(count)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        for built in pool.map(lambda job: _compile_extension(out, *job), jobs):
            built.stat()  # re-raises a failed build here


def extension_dir(data_dir: Path, count: int) -> Path:
    return cached(data_dir / f"ext-{count}", {"extensions": count, "suffix": EXT_SUFFIX},
                  lambda out: make_extensions(out, count))


def sized_extension(data_dir: Path, size: int) -> Path:
    """One extension module of about ``size`` bytes, mostly one initialised data section."""
    module = f"sized{size}"
    out = cached(data_dir / f"ext-sized-{size}", {"size": size, "suffix": EXT_SUFFIX},
                 lambda out: _compile_extension(out, module, max(size - 16384, 0)).stat())
    return out / f"{module}{EXT_SUFFIX}"


# -- a wheel -------------------------------------------------------------------------------

_WHEEL_SETUP = """\
from setuptools import setup
setup(name="bignsdemo.payload", version="1.0", packages=["bignsdemo", "bignsdemo.payload"],
      namespace_packages=["bignsdemo"], package_data={"bignsdemo.payload": ["*.bin"]})
"""


def make_wheel(out: Path, payload: int) -> None:
    """A setuptools wheel of a pkg_resources-style namespace portion carrying ``payload`` bytes of
    random (incompressible) data, so rewriting the archive has real work to do."""
    project = write_project(out / "project", {
        "bignsdemo/__init__.py": PKG_RESOURCES_INIT,
        "bignsdemo/payload/__init__.py": "NAME = 'payload'\n",
    }, _WHEEL_SETUP)
    rng = random.Random(payload)
    chunk = 16 << 20
    for number, start in enumerate(range(0, payload, chunk)):
        blob = project / "bignsdemo" / "payload" / f"blob{number:02d}.bin"
        blob.write_bytes(rng.randbytes(min(chunk, payload - start)))
    build_setuptools_wheel(project, out)
    shutil.rmtree(project)


def wheel_file(data_dir: Path, payload: int) -> Path:
    out = cached(data_dir / f"wheel-{payload}", {"payload": payload}, lambda out: make_wheel(out, payload))
    return next(out.glob("*.whl"))


def legacy_wheel_members(wheel: Path) -> list[str]:
    """What a maintainer would delete by hand: nspkg.pth, namespace_packages.txt, legacy inits."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        return [
            name for name in names
            if name.endswith("-nspkg.pth") or name.endswith(".dist-info/namespace_packages.txt")
            or (name.endswith("/__init__.py") and any(
                word in archive.read(name) for word in (b"declare_namespace", b"extend_path")))
        ]


def wheel_record(wheel: Path) -> str:
    with zipfile.ZipFile(wheel) as archive:
        return next(name for name in archive.namelist() if name.endswith(".dist-info/RECORD"))


# -- command line --------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--sizes", default="1000,5000", help="distribution counts of the sites")
    args = parser.parse_args(argv)
    for count in (int(s) for s in args.sizes.split(",")):
        print(site_tree(args.data_dir, count))


if __name__ == "__main__":
    main()
