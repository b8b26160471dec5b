"""Where the registry's paths are on this machine: below ``--root`` when one is given, and never
carried out of it by a symbolic link.

Paths are resolved once per session (one registry command), not once per use: resolving is a
system call per component, and one command asks about the same few paths many times.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from ..errors import BadInputError
from ..manifest import check_inside_root, host_path


class RootPaths:
    """The target system (or the image below ``root``) as seen from here."""

    def __init__(self, root: str | None) -> None:
        self.root = root
        self._site_paths: dict[str, Path] = {}
        self._real_paths: dict[Path, str] = {}

    def host(self, path: str, what: str) -> Path:
        return host_path(self.root, path, what)

    def site_path(self, site_dir: str) -> Path:
        """A site dir of a registry row or a manifest: absolute in the target system."""
        path = self._site_paths.get(site_dir)
        if path is None:
            if not site_dir.startswith("/"):
                # Rows are written from checked manifests: a relative one was put there by hand.
                raise BadInputError(f"registry row names the relative site dir {site_dir!r}; rebuild it "
                                    "from the installed manifests with 'ns-strip registry rebuild'", site_dir)
            path = host_path(self.root, site_dir, "a manifest's site_dir")
            self.check_inside_root(path)
            self._site_paths[site_dir] = path
        return path

    def manifest_path(self, manifest: str) -> Path:
        return host_path(self.root, manifest, "MANIFEST")

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """The span in which resolved paths are reused: one session. The next resolves afresh."""
        self._site_paths.clear()
        self._real_paths.clear()
        try:
            yield
        finally:
            self._site_paths.clear()
            self._real_paths.clear()

    def real(self, path: Path) -> str:
        real = self._real_paths.get(path)
        if real is None:
            real = self._real_paths[path] = os.path.realpath(path)
        return real

    def resolve(self, base: Path, relative: str) -> str:
        """``os.path.realpath(base / relative)``, with ``base`` resolved once.

        Below it, only ``relative``'s own components are looked at; if one is a link the whole
        path is resolved as before.
        """
        real = self.real(base)
        parts = relative.split("/")
        if all(part not in ("", ".", "..") for part in parts):
            for part in parts:
                real = os.path.join(real, part)
                if os.path.islink(real):
                    break
            else:
                return real  # no link below base: the resolved base joined with relative
        return os.path.realpath(base / relative)

    def check_inside_root(self, path: Path) -> None:
        """``check_inside_root`` with the root resolved once per session."""
        if self.root is None:
            return
        root = Path(self.root)
        real_root = self.real(root)
        real = self._real_paths[path] = self.resolve(root, os.path.relpath(path, root))
        if os.path.commonpath([real, real_root]) != real_root:
            check_inside_root(self.root, path)  # resolves afresh, and raises its refusal

    def leaves(self, base: Path, directory: str) -> bool:
        """Whether ``base/directory`` resolves outside ``base`` (a symbolic link carries it out)."""
        real_base = self.real(base)
        return os.path.commonpath([self.resolve(base, directory), real_base]) != real_base
