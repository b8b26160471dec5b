"""The least a scan written in Python does: the floor under ``ns-strip scan`` (run.py's scan rows).

    python benchmarks/scan_floor.py SITE           # plain open() and read()
    python benchmarks/scan_floor.py --safe SITE    # every read through ns_strip.safeio

Lists every directory below SITE except the bytecode caches (which a scan leaves unlisted, see
``sources.DeferredListings``) and reads the files every scan must read: each ``METADATA``,
``RECORD`` and ``namespace_packages.txt`` of the ``*.dist-info`` directories, every
``__init__.py`` and the ``.pth`` files at the top. It checks nothing and analyses nothing, and
prints only how many files it read, so its time against ``find -type f`` is what the walk and
the reads alone cost in Python, before any check or analysis. With ``--safe`` each file is read
as a scan reads it (``safeio.read_regular``: opened without following a link and without
blocking, checked to be a regular file inside the site dir, bounded).
"""

from __future__ import annotations

import os
import sys

READ_IN_METADATA = ("METADATA", "RECORD", "namespace_packages.txt")


def main(argv: list[str]) -> int:
    safe = argv[:1] == ["--safe"]
    site = argv[-1]
    if safe:
        from ns_strip.safeio import read_regular

        site_fd = os.open(site, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        within = os.path.realpath(site)

        def read(rel: str) -> bytes:
            return read_regular(rel, None, dir_fd=site_fd, within=within)
    else:
        def read(rel: str) -> bytes:
            with open(f"{site}/{rel}", "rb", buffering=0) as file:
                return file.read()
    wanted: list[str] = []
    pending = [""]
    while pending:
        rel = pending.pop()
        with os.scandir(f"{site}/{rel}" if rel else site) as entries:
            for entry in entries:
                name = entry.name
                if entry.is_dir(follow_symlinks=False):
                    if name != "__pycache__":
                        pending.append(f"{rel}/{name}" if rel else name)
                elif name == "__init__.py" or (not rel and name.endswith(".pth")) or (
                        rel.endswith(".dist-info") and name in READ_IN_METADATA):
                    wanted.append(f"{rel}/{name}" if rel else name)
    size = sum(len(read(rel)) for rel in wanted)
    print(f"{len(wanted)} files, {size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
