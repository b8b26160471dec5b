"""Helpers for the archive tests (no tests here): artifacts of every kind, written member by
member so that tests control every byte (hostile ones included), and the real sample's cache.

- :func:`wheel` is ``wheelbuild.craft_wheel`` (a true RECORD) with METADATA extras;
- :func:`sdist` writes ``NAME-VERSION.tar.gz`` (or ``.zip``) with PKG-INFO and an egg-info;
- :func:`deb` writes a ``.deb`` (ar: debian-binary, control.tar.xz, data.tar.xz) by hand, with
  files under ``usr/lib/python3/dist-packages``; ``raw_deb`` takes the tar members as they are;
- :func:`tar_bytes` builds a tar stream from ``(TarInfo, data)`` pairs.
"""

from __future__ import annotations

import io
import lzma
import os
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

from wheelbuild import craft_wheel

SITE = "usr/lib/python3/dist-packages"
PKG_RESOURCES_INIT = "__import__('pkg_resources').declare_namespace(__name__)\n"
PKGUTIL_INIT = "__path__ = __import__('pkgutil').extend_path(__path__, __name__)\n"
NSPKG_LINE = ("import sys, types, os;p = os.path.join(sys._getframe(1).f_locals['sitedir'], *('{ns}',));"
              "m = sys.modules.setdefault('{ns}', types.ModuleType('{ns}'));mp = (m or []) and "
              "m.__dict__.setdefault('__path__',[]);(p not in mp) and mp.append(p)\n")


def wheel(directory: Path, name: str, files: dict[str, str | bytes], version: str = "1.0",
          metadata_extra: str = "") -> Path:
    members = [(path, data.encode() if isinstance(data, str) else data) for path, data in files.items()]
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n{metadata_extra}"
    return craft_wheel(directory, members, name=name.replace("-", "_"), version=version, metadata=metadata)


def tar_bytes(members: Sequence[tuple[tarfile.TarInfo, bytes | None]], compression: str = "xz") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as archive:
        for info, data in members:
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    raw = buffer.getvalue()
    if compression == "xz":
        return lzma.compress(raw)
    if compression == "gz":
        import gzip

        return gzip.compress(raw, mtime=0)
    return raw


def file_info(name: str, data: bytes, mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = 1_600_000_000
    return info, data


def dir_info(name: str) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    return info, None


def ar_bytes(members: Sequence[tuple[str, bytes]]) -> bytes:
    out = bytearray(b"!<arch>\n")
    for name, data in members:
        header = f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode()
        assert len(header) == 60
        out += header + data
        if len(data) % 2:
            out += b"\n"
    return bytes(out)


def raw_deb(directory: Path, filename: str, data_members: Sequence[tuple[tarfile.TarInfo, bytes | None]],
            package: str = "python3-crafted", version: str = "1.0-1", data_name: str = "data.tar.xz",
            data_bytes: bytes | None = None) -> Path:
    control = (f"Package: {package}\nVersion: {version}\nArchitecture: all\nMaintainer: t <t@example.org>\n"
               f"Description: crafted\n crafted for the tests\n").encode()
    control_tar = tar_bytes([dir_info("./"), file_info("./control", control)])
    data = data_bytes if data_bytes is not None else tar_bytes(data_members)
    path = directory / filename
    directory.mkdir(parents=True, exist_ok=True)
    path.write_bytes(ar_bytes([("debian-binary", b"2.0\n"), ("control.tar.xz", control_tar), (data_name, data)]))
    return path


def deb(directory: Path, package: str, files: dict[str, str | bytes], version: str = "1.0-1",
        egg_info: dict[str, str] | None = None, dist_name: str | None = None) -> Path:
    """A ``.deb`` installing ``files`` (site-dir paths) the way dh_python3 does: an egg-info
    directory with PKG-INFO (and ``egg_info`` files), no RECORD."""
    members: list[tuple[tarfile.TarInfo, bytes | None]] = [dir_info("./"), dir_info(f"./{SITE}/")]
    name = dist_name or package.removeprefix("python3-")
    upstream = version.split("-")[0]
    meta = {"PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: {upstream}\n", **(egg_info or {})}
    for rel, content in {**files, **{f"{name}-{upstream}.egg-info/{k}": v for k, v in meta.items()}}.items():
        data = content.encode() if isinstance(content, str) else content
        members.append(file_info(f"./{SITE}/{rel}", data))
    return raw_deb(directory, f"{package}_{version}_all.deb", members, package=package, version=version)


def sdist(directory: Path, name: str, version: str, files: dict[str, str | bytes], kind: str = "tar.gz",
          top_level: Sequence[str] | None = None, namespace_packages: Sequence[str] = ()) -> Path:
    top = f"{name}-{version}"
    members: dict[str, bytes] = {}
    for rel, content in files.items():
        members[f"{top}/{rel}"] = content.encode() if isinstance(content, str) else content
    pkg_info = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    members[f"{top}/PKG-INFO"] = pkg_info
    egg = f"{top}/{name.replace('-', '_')}.egg-info"
    members[f"{egg}/PKG-INFO"] = pkg_info
    if top_level is not None:
        members[f"{egg}/top_level.txt"] = ("\n".join(top_level) + "\n").encode()
    if namespace_packages:
        members[f"{egg}/namespace_packages.txt"] = ("\n".join(namespace_packages) + "\n").encode()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{top}.{kind}"
    if kind == "zip":
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            for rel, data in members.items():
                archive.writestr(rel, data)
    else:
        path.write_bytes(tar_bytes([file_info(rel, data) for rel, data in members.items()], "gz"))
    return path


def run_archive(*args: str, env: dict[str, str] | None = None, timeout: float = 300
                ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ns_strip", "archive", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)
