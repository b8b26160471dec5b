"""An artifact's files held in memory and shown through the ``Source`` protocol.

Sdists and ``.deb`` files are compressed tar streams: they cannot be read at random like a
wheel, so they are read once, front to back, and what the analyses need is kept here: the name,
size and sha256 of every file, and the bytes of only the few files the analyses read (every
``__init__.py``, the ``.pth`` files of the site dir, the files of metadata directories and the
compiled extensions). Asking for the bytes of any other file is a BadInputError, never a read
of something unbounded.

Symbolic links are listed but never followed: in an archive there is no file system to
resolve them against, so a link always counts as leaving the root.
"""

from __future__ import annotations

import dataclasses

from ..errors import BadInputError
from ..extnames import is_extension_filename
from ..safeio import MAX_INIT_BYTES, MAX_RECORD_BYTES, MAX_TEXT_BYTES, FileTooLargeError
from ..sources import DirListing, parent_of

# A compiled extension is read whole to find its init exports; larger than this is not a
# Python extension anyone ships (the largest real ones are a few hundred MB of libraries
# with a .so name, which are kept up to this size).
MAX_EXTENSION_BYTES = 512 << 20
METADATA_SUFFIXES = (".dist-info", ".egg-info")


@dataclasses.dataclass
class MemberFile:
    size: int
    sha256: str  # as RECORD writes it: "sha256=" + urlsafe base64 without padding
    data: bytes | None = None  # kept only for the files the analyses read
    link: str | None = None  # a symbolic link's target


def kept_limit(path: str) -> int | None:
    """How many bytes of the file at ``path`` (site-dir view) are kept, or None for none."""
    directory, _, name = path.rpartition("/")
    if name == "__init__.py":
        return MAX_INIT_BYTES
    if not directory and name.endswith(".pth"):
        return MAX_TEXT_BYTES
    if directory and "/" not in directory and directory.endswith(METADATA_SUFFIXES):
        return MAX_RECORD_BYTES if name in ("RECORD", "installed-files.txt") else MAX_TEXT_BYTES
    if is_extension_filename(name):
        return MAX_EXTENSION_BYTES
    return None


class MemberSource:
    """Files of an artifact (see the module docstring), through the ``Source`` protocol."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.files: dict[str, MemberFile] = {}
        self._dirs: dict[str, DirListing] = {"": DirListing()}
        self._sorted = False

    def add(self, path: str, entry: MemberFile) -> None:
        """Add one file (or link) at ``path``, a normal relative POSIX path."""
        if path in self.files or path in self._dirs:
            raise BadInputError(f"{path!r} appears twice in the archive", self.label)
        parts = path.split("/")
        for depth in range(1, len(parts)):
            directory = "/".join(parts[:depth])
            if directory in self.files:
                raise BadInputError(f"{directory!r} is both a file and a directory in the archive", self.label)
            if directory not in self._dirs:
                self._dirs[directory] = DirListing()
                self._dirs[parent_of(directory)].subdirs.append(parts[depth - 1])
        listing = self._dirs[parent_of(path)]
        listing.files.append(parts[-1])
        if entry.link is not None:
            listing.links.add(parts[-1])
        self.files[path] = entry
        self._sorted = False

    def add_directory(self, path: str) -> None:
        if path in self.files:
            raise BadInputError(f"{path!r} is both a file and a directory in the archive", self.label)
        parts = path.split("/")
        for depth in range(1, len(parts) + 1):
            directory = "/".join(parts[:depth])
            if directory not in self._dirs:
                self._dirs[directory] = DirListing()
                self._dirs[parent_of(directory)].subdirs.append(parts[depth - 1])

    # -- the Source protocol ---------------------------------------------------------------

    @property
    def dirs(self) -> dict[str, DirListing]:
        if not self._sorted:
            for listing in self._dirs.values():
                listing.files.sort()
                listing.subdirs.sort()
            self._sorted = True
        return self._dirs

    def read_bytes(self, path: str, limit: int | None = None) -> bytes:
        """The kept content of ``path``; FileTooLargeError when it is over ``limit``."""
        entry = self.files.get(path)
        if entry is None:
            raise BadInputError(f"no file {path!r} in the archive", self.label)
        if entry.link is not None:
            raise BadInputError(f"{path!r} is a symbolic link in the archive; not followed", self.label)
        if entry.data is None:
            raise BadInputError(f"{path!r} was not kept from the archive (too large, or not needed)", self.label)
        if limit is not None and len(entry.data) > limit:
            raise FileTooLargeError(path, len(entry.data), limit)
        return entry.data

    def link_leaves_root(self, path: str) -> bool:
        return True  # nothing to resolve a link against: never followed

    def is_link(self, path: str) -> bool:
        entry = self.files.get(path)
        return entry is not None and entry.link is not None

    def climb_limit(self) -> int:
        return 0

    def metadata_dirs(self) -> list[str]:
        return [name for name in self.dirs[""].subdirs if name.endswith(METADATA_SUFFIXES)]

    def set_data(self, path: str, data: bytes) -> None:
        """Put a synthesised file (a RECORD the artifact lacks) into the view."""
        from ..metadata_edit import record_hash

        if path in self.files:
            self.files[path] = MemberFile(len(data), record_hash(data), data)
            return
        self.add(path, MemberFile(len(data), record_hash(data), data))

    def file_items(self) -> list[tuple[str, MemberFile]]:
        return sorted(self.files.items())

