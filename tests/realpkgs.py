"""Pinned real releases for the integration suite (issue 12), downloaded once into a cache.

PyPI wheels: exact files with their sha256, fetched with ``pip download --no-deps
--require-hashes``. Debian packages: exact versions fetched with ``apt-get download`` (apt checks
them against the archive's signed index; nothing is installed) and unpacked with ``dpkg-deb``.
The cache is ``$NS_STRIP_TEST_CACHE``, else ``$XDG_CACHE_HOME/ns-strip-tests``, else
``~/.cache/ns-strip-tests``; ``.ci/setup.d/40-realsys.sh`` fills it before the tests run.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

# filename -> (requirement, sha256). What each one shows is in tests/test_real_packages.py.
WHEELS: dict[str, tuple[str, str]] = {
    "zope.event-5.0-py3-none-any.whl": (
        "zope.event==5.0", "2832e95014f4db26c47a13fdaef84cef2f4df37e66b59d8f1f4a8f319a632c26"),
    "zope.interface-6.4.post2-cp311-cp311-manylinux_2_5_x86_64.manylinux1_x86_64.manylinux_2_17_x86_64."
    "manylinux2014_x86_64.whl": (
        "zope.interface==6.4.post2", "47654177e675bafdf4e4738ce58cdc5c6d6ee2157ac0a78a3fa460942b9d64a8"),
    "basemap-1.3.8-cp311-cp311-manylinux1_x86_64.whl": (
        "basemap==1.3.8", "39c6f86dc17507a5a5c704fa9287841cf09fbbb44d00987888202a5811b471e6"),
    "pycryptodome-3.20.0-cp35-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl": (
        "pycryptodome==3.20.0", "76cb39afede7055127e35a444c1c041d2e8d2f1f9c121ecef573757ba4cd2c3c"),
    "XStatic-1.0.3-py3-none-any.whl": (
        "XStatic==1.0.3", "ff8f9c5132c400f2f308eb6c998ca5530899926ec71c89818ef46bc854e98989"),
    "keyrings.alt-4.2.0-py3-none-any.whl": (
        "keyrings.alt==4.2.0", "3d25912ed71d6deec85d7e6e867963e1357cd56186a41c9295b86939a5ebf85c"),
    "black-24.4.2-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl": (
        "black==24.4.2", "e151054aa00bad1f4e1f04919542885f89f5f7d086b8a59e5000e6c616896ffb"),
    "ruamel.yaml-0.17.21-py3-none-any.whl": (
        "ruamel.yaml==0.17.21", "742b35d3d665023981bd6d16b3d24248ce5df75fdb4e2924e93a05c1f8b61ca7"),
    "repoze.who-2.4.1-py3-none-any.whl": (
        "repoze.who==2.4.1", "5d422e060311452f841ba21a70e8f96d65af8a7e10004dc366f7e0eb9843d062"),
    "Paste-3.10.1-py3-none-any.whl": (
        "Paste==3.10.1", "995e9994b6a94a2bdd8bd9654fb70ca3946ffab75442468bacf31b4d06481c3d"),
    "fs-2.4.16-py2.py3-none-any.whl": (
        "fs==2.4.16", "660064febbccda264ae0b6bace80a8d1be9e089e0a5eb2427b7d517f9a91545c"),
    "google_cloud_core-1.0.3-py2.py3-none-any.whl": (
        "google-cloud-core==1.0.3", "0ee17abc74ff02176bee221d4896a00a3c202f3fb07125a7d814ccabd20d7eb5"),
}

# Debian 12 packages: name -> version.
DEBS: dict[str, str] = {
    "python3-zope.event": "4.4-3",
    "python3-keyrings.alt": "4.2.0-1",
    "python3-matplotlib": "3.6.3-1+b1",
    "python3-numpy": "1:1.24.2-1+deb12u1",
}


def cache_dir() -> Path:
    explicit = os.environ.get("NS_STRIP_TEST_CACHE")
    if explicit:
        path = Path(explicit)
    else:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        path = Path(base) / "ns-strip-tests"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def wheel(filename: str) -> Path:
    """A pinned wheel, from the cache or downloaded into it (its hash checked either way)."""
    requirement, digest = WHEELS[filename]
    path = cache_dir() / filename
    if not path.exists() or _sha256(path) != digest:
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as requirements:
            requirements.write(f"{requirement} --hash=sha256:{digest}\n")
        try:
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                 "--require-hashes", "-r", requirements.name, "-d", str(cache_dir())],
                check=True, capture_output=True, timeout=600,
            )
        finally:
            os.unlink(requirements.name)
    if _sha256(path) != digest:
        raise AssertionError(f"{path}: sha256 is not the pinned {digest}")
    return path


def deb(name: str) -> Path:
    """A pinned Debian package file, from the cache or ``apt-get download``."""
    version = DEBS[name]
    matches = sorted(cache_dir().glob(f"{name}_{version.replace(':', '%3a')}_*.deb"))
    if not matches:
        subprocess.run(["apt-get", "download", "-q", f"{name}={version}"], cwd=cache_dir(), check=True,
                       capture_output=True, timeout=600)
        matches = sorted(cache_dir().glob(f"{name}_{version.replace(':', '%3a')}_*.deb"))
    assert matches, f"apt-get download {name}={version} left no file in {cache_dir()}"
    return matches[0]


def unpack_deb(name: str, destination: Path) -> Path:
    """The package's files below ``destination``; returns its ``usr/lib/python3/dist-packages``."""
    subprocess.run(["dpkg-deb", "-x", str(deb(name)), str(destination)], check=True, capture_output=True)
    return destination / "usr" / "lib" / "python3" / "dist-packages"


def prefetch() -> None:
    for filename in WHEELS:
        wheel(filename)
    for name in DEBS:
        deb(name)


if __name__ == "__main__":
    prefetch()
    print(f"ns-strip real-package cache ready: {cache_dir()}")
