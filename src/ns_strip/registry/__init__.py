"""The namespace registry: which installed packages use which namespace directory, kept in
SQLite, so the last package to leave a namespace takes with it what the toolkit or the
interpreter left there, and nothing a package still ships.

Split along its seams: :mod:`.paths` (where things are, never out of the root),
:mod:`.database` (schema, lock, connections, refusing damage), :mod:`.plan` (what to do in one
directory, and doing it), :mod:`.core` (the commands, and the order that makes them crash-safe).
"""

from __future__ import annotations

from ..manifest import PLACEHOLDER_MODES
from .core import DEFAULT_DB, InstalledManifest, PackageRow, Registry, SyncResult
from .database import SCHEMA_VERSION, WAIT_SECONDS
from .plan import PLACEHOLDER, PLACEHOLDER_SHA256, PLACEHOLDER_TEMPORARY, Change, DirectoryState, file_sha256

__all__ = [
    "DEFAULT_DB", "PLACEHOLDER", "PLACEHOLDER_MODES", "PLACEHOLDER_SHA256", "PLACEHOLDER_TEMPORARY",
    "SCHEMA_VERSION", "WAIT_SECONDS", "Change", "DirectoryState", "InstalledManifest", "PackageRow", "Registry",
    "SyncResult", "file_sha256",
]
