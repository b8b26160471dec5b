"""The registry's commands: add, remove, sync, list, verify, rebuild.

Crash safety rests on one order. A command first commits its change of the bookkeeping
together with a *pending* row for every directory whose files must follow (one whose plan,
made in that transaction, has a step to do or a row to change: most have neither, and then
the command is that one commit); then it brings each such directory in line with the
bookkeeping, every step of which can run again; then it commits, in one transaction, what it
created and deletes the pending rows. A ``kill -9`` before the first commit changes nothing;
after it, the pending rows say which directories to look at, and every later registry command
(or ``verify --repair``) settles them first. What to do in a directory is always decided from
the bookkeeping and the files as they are then, never replayed from a log, so settling twice
is settling once.

Several processes serialise on an exclusive ``flock`` of ``<db>.lock`` held for the whole
command (the file-system steps are not covered by SQLite's own locking), and on
``BEGIN IMMEDIATE`` with a busy timeout for the database itself.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import posixpath
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from ..errors import ApplyError, NsStripError
from ..findings import Finding
from ..journal import Checkpoints  # the same NS_STRIP_TEST_KILL_AT test hook as strip
from ..manifest import Manifest, namespace_name
from ..scan import INIT
from .database import Database, database_files
from .paths import RootPaths
from .plan import (
    DUE,
    PLACEHOLDER_SHA256,
    Change,
    DirectoryPlan,
    DirectoryState,
    carry_out,
    depth_first,
    file_sha256,
    plan_directory,
)

DEFAULT_DB = "/var/lib/ns-strip/registry.sqlite3"


@dataclasses.dataclass(frozen=True)
class PackageRow:
    name: str
    site_dir: str
    manifest: str
    manifest_sha256: str
    placeholders: str
    namespaces: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        data = dataclasses.asdict(self)
        data["namespaces"] = [namespace_name(d) for d in self.namespaces]
        return data


@dataclasses.dataclass(frozen=True)
class InstalledManifest:
    """A manifest as the registry takes it: where it is, its hash, the placeholder mode."""

    manifest: Manifest
    label: str  # its path in the target system
    sha256: str
    placeholders: str


@dataclasses.dataclass
class SyncResult:
    added: list[str] = dataclasses.field(default_factory=list)
    updated: list[str] = dataclasses.field(default_factory=list)
    removed: list[str] = dataclasses.field(default_factory=list)


class Registry:
    """One registry database and the system (or image below ``root``) it describes."""

    def __init__(self, root: str | None = None, db: str | None = None) -> None:
        self.root = root
        self.paths = RootPaths(root)
        self.db_label = db or DEFAULT_DB
        self.checkpoint = Checkpoints()
        self.database = Database(self.paths.host(self.db_label, "--db"), self.checkpoint)
        self.db = self.database.path
        self.changes: list[Change] = []  # done by this command
        self.recovered: list[Change] = []  # done to finish an interrupted command
        self.findings: list[Finding] = []

    def site_path(self, site_dir: str) -> Path:
        return self.paths.site_path(site_dir)

    def manifest_path(self, manifest: str) -> Path:
        return self.paths.manifest_path(manifest)

    # -- sessions --------------------------------------------------------------------------

    @contextlib.contextmanager
    def session(self, write: bool) -> Iterator[sqlite3.Connection | None]:
        """Lock, open and check the database. Read-only sessions yield None when there is none."""
        with self.paths.session():
            if write:
                self._make_db_directory()
            elif not self.database.exists():
                yield None
                return
            with self.database.locked(exclusive=write), self.database.errors():
                connection = self.database.connect(write)
                try:
                    yield connection
                finally:
                    connection.close()

    def _make_db_directory(self) -> None:
        self.paths.check_inside_root(self.db.parent)  # before mkdir: create nothing outside
        try:
            self.db.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ApplyError(f"cannot create the registry directory: {exc.strerror}", str(self.db.parent)) from exc
        self.paths.check_inside_root(self.db)  # the database itself must not be a link out

    # -- commands --------------------------------------------------------------------------

    def add(self, manifest: Manifest, manifest_label: str, manifest_sha256: str, placeholders: str) -> bool:
        """Register (or re-register, on an upgrade) a package. Returns whether it was known."""
        with self.session(write=True) as connection:
            assert connection is not None
            self.settle_pending(connection, recovering=True)
            with self.database.transaction(connection):
                known, earlier = self._forget(connection, manifest.package)
                self._insert(connection, InstalledManifest(manifest, manifest_label, manifest_sha256, placeholders))
                self._mark_due(connection, earlier + [(manifest.site_dir, d) for d in manifest.namespaces])
            self.settle_pending(connection)
        return known

    def remove(self, package: str) -> bool:
        """Unregister a package; returns whether it was registered (removing twice is fine)."""
        with self.session(write=True) as connection:
            assert connection is not None
            self.settle_pending(connection, recovering=True)
            with self.database.transaction(connection):
                known, earlier = self._forget(connection, package)
                self._mark_due(connection, earlier)
            self.settle_pending(connection)
        return known

    def sync(self, installed: Sequence[InstalledManifest], manifest_dir: str) -> SyncResult:
        """Bring the registry in line with the manifests installed in ``manifest_dir``.

        One transaction registers the new and changed ones and unregisters the packages whose
        manifest there is gone; then the directories that must follow are settled together.
        What dpkg's file trigger runs once for any number of packages in one run. Packages
        registered from a manifest elsewhere (``registry add`` by hand) are left alone.
        """
        result = SyncResult()
        with self.session(write=True) as connection:
            assert connection is not None
            self.settle_pending(connection, recovering=True)
            with self.database.transaction(connection):
                registered = {row.name: row for row in self._packages(connection)}
                wanted = {item.manifest.package: item for item in installed}
                due: list[tuple[str, str]] = []
                for name, row in registered.items():
                    if name not in wanted and _is_in(row.manifest, manifest_dir):
                        due += self._forget(connection, name)[1]
                        result.removed.append(name)
                for name, item in wanted.items():
                    row = registered.get(name)
                    if row is not None and (row.manifest, row.manifest_sha256, row.placeholders) == (
                            item.label, item.sha256, item.placeholders):
                        continue
                    due += self._forget(connection, name)[1]
                    self._insert(connection, item)
                    due += [(item.manifest.site_dir, d) for d in item.manifest.namespaces]
                    (result.updated if row is not None else result.added).append(name)
                self._mark_due(connection, due)
            self.settle_pending(connection)
        return result

    def _insert(self, connection: sqlite3.Connection, item: InstalledManifest) -> None:
        manifest = item.manifest
        self.site_path(manifest.site_dir)  # refuse a site dir out of the root before writing
        connection.execute("INSERT INTO packages VALUES (?, ?, ?, ?, ?)",
                           (manifest.package, manifest.site_dir, item.label, item.sha256, item.placeholders))
        connection.executemany(
            "INSERT INTO contributions VALUES (?, ?, ?, ?)",
            [(manifest.site_dir, directory, manifest.package, _json_list(manifest.portions.get(directory, [])))
             for directory in manifest.namespaces],
        )

    def _forget(self, connection: sqlite3.Connection, package: str) -> tuple[bool, list[tuple[str, str]]]:
        """Drop a package's rows: whether it was registered, and the directories it used."""
        known = connection.execute("SELECT 1 FROM packages WHERE name = ?", (package,)).fetchone() is not None
        earlier = connection.execute(
            "SELECT site_dir, directory FROM contributions WHERE package = ?", (package,)
        ).fetchall()
        connection.execute("DELETE FROM contributions WHERE package = ?", (package,))
        connection.execute("DELETE FROM packages WHERE name = ?", (package,))
        return known, earlier

    def _mark_pending(self, connection: sqlite3.Connection, directories: Iterable[tuple[str, str]]) -> None:
        # Retired directories ride along: each command looks at them again.
        rows = list(directories) + connection.execute("SELECT site_dir, directory FROM retired").fetchall()
        connection.executemany("INSERT OR IGNORE INTO pending VALUES (?, ?)", rows)

    def _mark_due(self, connection: sqlite3.Connection, directories: Iterable[tuple[str, str]]) -> None:
        """Mark pending only the directories whose settling would change a file or a row.

        Called inside the transaction of the change, under the exclusive lock, so the plan is
        the one settling would make right after the commit. Most commands (a second package in
        a namespace, a remove that leaves others) then settle nothing, and skip the second
        durable commit that only cleared the mark: the registry's throughput is its commits.
        """
        retired = set(connection.execute("SELECT site_dir, directory FROM retired").fetchall())
        rows = set(directories) | retired
        due = {row for row in rows if self._needs_settling(connection, row, row in retired)}
        # A parent's plan depends on its children being gone (an empty directory goes, deepest
        # first), so the parent of a directory that is due is due with it.
        due |= {(site, parent) for site, parent in rows
                if any(s == site and d.startswith(parent + "/") for s, d in due)}
        connection.executemany("INSERT OR IGNORE INTO pending VALUES (?, ?)", sorted(due))

    def _needs_settling(self, connection: sqlite3.Connection, row: tuple[str, str], retired: bool) -> bool:
        """Whether _settle would do anything: a file step, a row to write, or a finding to give."""
        site_dir, directory = row
        state = self.state(connection, site_dir, directory)
        findings = len(self.findings)
        try:
            base = self.site_path(site_dir)
            plan = self.plan(state, base)
        except NsStripError:
            return True  # settling reports it, after the change is committed, as it always did
        finally:
            found = self.findings[findings:]
            del self.findings[findings:]  # settling gives the finding once, when it runs
        if plan.changes or found:
            return True
        if state.created_sha256 != (PLACEHOLDER_SHA256 if plan.owns_placeholder else None):
            return True
        return retired != (not state.packages and (base / directory).is_dir())

    def packages(self) -> list[PackageRow]:
        with self.session(write=False) as connection:
            return [] if connection is None else self._packages(connection)

    def _packages(self, connection: sqlite3.Connection) -> list[PackageRow]:
        rows = connection.execute("SELECT * FROM packages ORDER BY name").fetchall()
        result = []
        for name, site_dir, manifest, sha256, placeholders in rows:
            directories = connection.execute(
                "SELECT directory FROM contributions WHERE package = ? ORDER BY directory", (name,)
            ).fetchall()
            result.append(PackageRow(name, site_dir, manifest, sha256, placeholders, tuple(d for (d,) in directories)))
        return result

    def namespaces(self) -> list[DirectoryState]:
        """Every namespace directory some package uses, with its packages (the count)."""
        with self.session(write=False) as connection:
            if connection is None:
                return []
            rows = connection.execute("SELECT DISTINCT site_dir, directory FROM contributions").fetchall()
            return [self.state(connection, site_dir, directory) for site_dir, directory in sorted(rows)]

    # -- settling directories ---------------------------------------------------------------

    def state(self, connection: sqlite3.Connection, site_dir: str, directory: str) -> DirectoryState:
        rows = connection.execute(
            "SELECT c.package, p.placeholders FROM contributions c JOIN packages p ON p.name = c.package "
            "WHERE c.site_dir = ? AND c.directory = ? ORDER BY c.package",
            (site_dir, directory),
        ).fetchall()
        created = connection.execute(
            "SELECT sha256 FROM created WHERE site_dir = ? AND path = ?", (site_dir, f"{directory}/{INIT}")
        ).fetchone()
        return DirectoryState(
            site_dir, directory, tuple(name for name, _ in rows),
            any(mode == "pkgutil" for _, mode in rows), created[0] if created else None,
        )

    def plan(self, state: DirectoryState, base: Path) -> DirectoryPlan:
        return plan_directory(state, base, self.paths, self.findings)

    def settle_pending(self, connection: sqlite3.Connection, recovering: bool = False) -> None:
        """Bring every pending directory in line; ``recovering``: left by an interrupted command.

        The file steps of all directories come first, then one transaction records them all
        (one durable commit, not one per directory). A kill in between leaves every mark in
        place, and settling again decides from the files as they are, so it is settling once.
        """
        rows = connection.execute("SELECT site_dir, directory FROM pending").fetchall()
        done = self.recovered if recovering else self.changes
        settled: list[tuple[DirectoryState, DirectoryPlan, bool]] = []
        try:
            for site_dir, directory in depth_first(rows):
                settled.append(self._settle(self.state(connection, site_dir, directory), done))
        finally:
            # Also when a later directory failed: what the earlier ones did is recorded.
            if settled:
                self._record_settled(connection, settled)

    def _settle(self, state: DirectoryState, done: list[Change]) -> tuple[DirectoryState, DirectoryPlan, bool]:
        base = self.site_path(state.site_dir)
        plan = self.plan(state, base)
        for change in plan.changes:
            self.checkpoint()
            carry_out(change, base, self.checkpoint)
            done.append(change)
        return state, plan, (base / state.directory).is_dir()

    def _record_settled(self, connection: sqlite3.Connection,
                        settled: list[tuple[DirectoryState, DirectoryPlan, bool]]) -> None:
        with self.database.transaction(connection):
            for state, plan, exists in settled:
                key = (state.site_dir, state.init)
                if plan.owns_placeholder:
                    connection.execute("INSERT OR REPLACE INTO created VALUES (?, ?, ?)", key + (PLACEHOLDER_SHA256,))
                else:
                    connection.execute("DELETE FROM created WHERE site_dir = ? AND path = ?", key)
                where = (state.site_dir, state.directory)
                if not state.packages and exists:
                    connection.execute("INSERT OR IGNORE INTO retired VALUES (?, ?)", where)
                else:
                    connection.execute("DELETE FROM retired WHERE site_dir = ? AND directory = ?", where)
                connection.execute("DELETE FROM pending WHERE site_dir = ? AND directory = ?", where)

    # -- verify, repair, rebuild ------------------------------------------------------------

    def verify(self, repair: bool = False) -> list[Finding]:
        """Drift between the bookkeeping and the files, after settling everything if ``repair``."""
        with self.session(write=repair) as connection:
            if connection is None:
                return []
            if repair:
                with self.database.transaction(connection):
                    self._mark_pending(connection, self._known_directories(connection))
                self.settle_pending(connection)
            return self._drift(connection)

    def _known_directories(self, connection: sqlite3.Connection) -> list[tuple[str, str]]:
        rows = connection.execute(
            "SELECT site_dir, directory FROM contributions UNION SELECT site_dir, directory FROM retired "
            "UNION SELECT site_dir, directory FROM pending"
        ).fetchall()
        created = connection.execute("SELECT site_dir, path FROM created").fetchall()
        return rows + [(site_dir, path.rpartition("/")[0]) for site_dir, path in created]

    def _drift(self, connection: sqlite3.Connection) -> list[Finding]:
        check = connection.execute("PRAGMA quick_check").fetchone()
        if check is None or check[0] != "ok":
            raise self.database.unreadable(f"integrity check: {check[0] if check else 'no answer'}")
        findings: list[Finding] = []
        pending = set(connection.execute("SELECT site_dir, directory FROM pending").fetchall())
        for site_dir, directory in sorted(pending):
            findings.append(Finding(
                "NS510", directory,
                "an interrupted registry command left this namespace directory unsettled; the next "
                "'ns-strip registry' command settles it (or run 'ns-strip registry verify --repair')",
                details={"site_dir": site_dir},
            ))
        for site_dir, directory in depth_first(self._known_directories(connection)):
            if (site_dir, directory) not in pending:
                findings.extend(self._directory_drift(self.state(connection, site_dir, directory)))
        findings.extend(self._package_drift(connection))
        return findings

    def _directory_drift(self, state: DirectoryState) -> list[Finding]:
        base = self.site_path(state.site_dir)
        details = {"site_dir": state.site_dir}
        if state.packages and not (base / state.directory).is_dir():
            return [Finding(
                "NS511", state.directory,
                "namespace directory of registered packages is missing; reinstall them or run "
                "'ns-strip registry remove' for each",
                state.packages, details,
            )]
        plan = self.plan(state, base)
        findings = [Finding(c.code, c.path, f"{c.reason}: due to be {DUE[c.action]}; run "
                            "'ns-strip registry verify --repair'", state.packages, details)
                    for c in plan.changes]
        init_sha = file_sha256(base / state.init)
        if state.created_sha256 is not None and init_sha not in (None, state.created_sha256):
            findings.append(Finding(
                "NS513", state.init,
                "the placeholder the toolkit created was changed since; it will be kept and no longer "
                "tracked (run 'ns-strip registry verify --repair' to stop tracking it)",
                state.packages, details,
            ))
        return findings

    def _package_drift(self, connection: sqlite3.Connection) -> list[Finding]:
        findings = []
        for package in self._packages(connection):
            details = {"site_dir": package.site_dir}
            manifest = self.manifest_path(package.manifest)
            sha = file_sha256(manifest)
            if sha != package.manifest_sha256:
                what = "is missing" if sha is None else "changed since it was registered"
                findings.append(Finding(
                    "NS517", package.manifest,
                    f"manifest of {package.name} {what}; run 'ns-strip registry add {package.name} MANIFEST' "
                    "again, or 'ns-strip registry remove' if the package is gone",
                    (package.name,), details,
                ))
            base = self.site_path(package.site_dir)
            rows = connection.execute(
                "SELECT directory, portions FROM contributions WHERE package = ? ORDER BY directory", (package.name,)
            ).fetchall()
            for directory, portions in rows:
                names = self.database.portions(portions, package.name)
                missing = [n for n in names if not os.path.lexists(base / directory / n)]
                if missing:
                    findings.append(Finding(
                        "NS516", directory,
                        f"{package.name} is registered but its portions {', '.join(missing)} are gone; if the "
                        f"package was removed, run 'ns-strip registry remove {package.name}'",
                        (package.name,), dict(details, missing=missing),
                    ))
        return findings

    def rebuild(self, installed: Sequence[InstalledManifest], placeholders: str | None) -> str | None:
        """Replace the database by one made from installed manifests.

        ``placeholders`` overrides every manifest's mode; None: the manifest's own, else the
        mode found on disk. Returns where an unreadable old database was moved, if it was.
        """
        with self.paths.session():
            self._make_db_directory()
            with self.database.locked(exclusive=True), self.database.errors():
                moved = self.database.set_aside_if_unreadable()
                fresh = self.db.with_name(self.db.name + ".rebuild")
                for leftover in database_files(fresh):
                    leftover.unlink(missing_ok=True)
                connection = self.database.connect(write=True, path=fresh)
                try:
                    with self.database.transaction(connection):
                        for item in installed:
                            mode = placeholders or self._found_placeholder_mode(item)
                            self._insert(connection, dataclasses.replace(item, placeholders=mode))
                            connection.executemany("INSERT OR IGNORE INTO pending VALUES (?, ?)",
                                                   [(item.manifest.site_dir, d) for d in item.manifest.namespaces])
                finally:
                    connection.close()
                for stale in database_files(self.db)[1:]:
                    stale.unlink(missing_ok=True)  # a journal of the old database must not touch the new one
                self.checkpoint()
                os.replace(fresh, self.db)
                self.checkpoint()
                connection = self.database.connect(write=True)
                try:
                    self.settle_pending(connection)
                finally:
                    connection.close()
        return moved

    def _found_placeholder_mode(self, item: InstalledManifest) -> str:
        if item.placeholders != "none":
            return item.placeholders  # the manifest says so
        base = self.site_path(item.manifest.site_dir)
        found = any(file_sha256(base / d / INIT) == PLACEHOLDER_SHA256 for d in item.manifest.namespaces)
        return "pkgutil" if found else "none"


def _json_list(names: list[str]) -> str:
    return json.dumps(names)


def _is_in(path: str, directory: str) -> bool:
    return posixpath.dirname(posixpath.normpath(path)) == posixpath.normpath(directory)
