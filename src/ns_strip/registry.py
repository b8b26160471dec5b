"""The namespace registry: which installed packages use which namespace directory, kept in
SQLite, so the last package to leave a namespace takes with it what the toolkit or the
interpreter left there, and nothing a package still ships.

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
import errno
import fcntl
import hashlib
import importlib.util
import json
import os
import sqlite3
import time
import urllib.parse
from collections.abc import Iterable, Iterator
from pathlib import Path

from .errors import ApplyError, BadInputError, NsStripError
from .findings import Finding
from .journal import Checkpoints  # the same NS_STRIP_TEST_KILL_AT test hook as strip
from .manifest import Manifest, check_inside_root, host_path, namespace_name
from .scan import INIT, PYCACHE

DEFAULT_DB = "/var/lib/ns-strip/registry.sqlite3"
SCHEMA_VERSION = "1"
# How long to wait for another ns-strip process (lock file) or another connection (SQLite).
WAIT_SECONDS = 120.0
PLACEHOLDER_MODES = ("none", "pkgutil")

PLACEHOLDER = (
    b"# Namespace package placeholder written by 'ns-strip registry' when the first package\n"
    b"# using this namespace was installed; it goes with the last one. Do not edit.\n"
    b"from pkgutil import extend_path\n"
    b"__path__ = extend_path(__path__, __name__)\n"
)
PLACEHOLDER_SHA256 = hashlib.sha256(PLACEHOLDER).hexdigest()
# The placeholder is written here first and linked into place, so no reader ever sees a
# half-written __init__.py (an empty one would make the namespace a regular package).
PLACEHOLDER_TEMPORARY = INIT + ".ns-strip-tmp"

_TABLES = ("meta", "packages", "contributions", "created", "retired", "pending")
_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE packages (
    name TEXT PRIMARY KEY,
    site_dir TEXT NOT NULL,
    manifest TEXT NOT NULL,          -- its path in the target system
    manifest_sha256 TEXT NOT NULL,
    placeholders TEXT NOT NULL       -- none | pkgutil
);
-- The reference count of a namespace directory is its number of rows here.
CREATE TABLE contributions (
    site_dir TEXT NOT NULL,
    directory TEXT NOT NULL,         -- relative to site_dir
    package TEXT NOT NULL,
    portions TEXT NOT NULL,          -- JSON list of names the package ships in the directory
    PRIMARY KEY (site_dir, directory, package)
);
-- Files the toolkit created, with the hash they had: only these are ever removed.
CREATE TABLE created (site_dir TEXT NOT NULL, path TEXT NOT NULL, sha256 TEXT NOT NULL,
                      PRIMARY KEY (site_dir, path));
-- Directories whose last package left while they still held files; looked at again later.
CREATE TABLE retired (site_dir TEXT NOT NULL, directory TEXT NOT NULL, PRIMARY KEY (site_dir, directory));
-- Directories whose files must still be brought in line with the rows above.
CREATE TABLE pending (site_dir TEXT NOT NULL, directory TEXT NOT NULL, PRIMARY KEY (site_dir, directory));
"""


@dataclasses.dataclass(frozen=True)
class Change:
    """One file-system step in a namespace directory (or, from verify, one that is due)."""

    action: str  # create | remove | rmdir
    site_dir: str
    path: str  # relative to site_dir
    reason: str
    code: str  # the drift finding when the step is due but not done

    def to_json(self) -> dict[str, str]:
        return {"action": self.action, "site_dir": self.site_dir, "path": self.path, "reason": self.reason}

    def describe(self) -> str:
        verb = {"create": "Creating", "remove": "Removing", "rmdir": "Removing directory"}[self.action]
        return f"{verb} {self.site_dir}/{self.path} ({self.reason})"


@dataclasses.dataclass(frozen=True)
class DirectoryState:
    """What the bookkeeping says about one namespace directory."""

    site_dir: str
    directory: str
    packages: tuple[str, ...]
    wants_placeholder: bool
    created_sha256: str | None  # of the placeholder the toolkit created there

    @property
    def init(self) -> str:
        return f"{self.directory}/{INIT}"

    def to_json(self) -> dict[str, object]:
        return {
            "name": namespace_name(self.directory), "directory": self.directory, "site_dir": self.site_dir,
            "count": len(self.packages), "packages": list(self.packages),
            "placeholder": self.created_sha256 is not None,
        }


@dataclasses.dataclass
class DirectoryPlan:
    changes: list[Change]
    owns_placeholder: bool  # whether, once done, the toolkit's placeholder is there


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


def file_sha256(path: Path) -> str | None:
    """The hash of a regular file; None when there is none; "" for a link or another kind."""
    try:
        if path.is_symlink() or not path.is_file():
            return "" if os.path.lexists(path) else None
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return ""


def _depth_first(rows: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Deepest directories first, so a parent is looked at once its children are gone."""
    return sorted(set(rows), key=lambda row: (-row[1].count("/"), row))


class Registry:
    """One registry database and the system (or image below ``root``) it describes."""

    def __init__(self, root: str | None = None, db: str | None = None) -> None:
        self.root = root
        self.db_label = db or DEFAULT_DB
        self.db = host_path(root, self.db_label, "--db")
        self.lock = self.db.with_name(self.db.name + ".lock")
        self.checkpoint = Checkpoints()
        self.changes: list[Change] = []  # done by this command
        self.recovered: list[Change] = []  # done to finish an interrupted command
        self.findings: list[Finding] = []
        # Paths resolved once per session, not once per use: resolving is a system call per
        # component, and one command asks about the same few paths many times.
        self._site_paths: dict[str, Path] = {}
        self._real_paths: dict[Path, str] = {}

    # -- paths -----------------------------------------------------------------------------

    def site_path(self, site_dir: str) -> Path:
        path = self._site_paths.get(site_dir)
        if path is None:
            path = host_path(self.root, site_dir, "a manifest's site_dir")
            self._check_inside_root(path)
            self._site_paths[site_dir] = path
        return path

    @contextlib.contextmanager
    def _resolving(self) -> Iterator[None]:
        """The span in which resolved paths are reused: one session. The next resolves afresh."""
        self._site_paths.clear()
        self._real_paths.clear()
        try:
            yield
        finally:
            self._site_paths.clear()
            self._real_paths.clear()

    def _real(self, path: Path) -> str:
        real = self._real_paths.get(path)
        if real is None:
            real = self._real_paths[path] = os.path.realpath(path)
        return real

    def _resolve(self, base: Path, relative: str) -> str:
        """``os.path.realpath(base / relative)``, with ``base`` resolved once.

        Below it, only ``relative``'s own components are looked at; if one is a link the whole
        path is resolved as before.
        """
        real = self._real(base)
        parts = relative.split("/")
        if all(part not in ("", ".", "..") for part in parts):
            for part in parts:
                real = os.path.join(real, part)
                if os.path.islink(real):
                    break
            else:
                return real  # no link below base: the resolved base joined with relative
        return os.path.realpath(base / relative)

    def _check_inside_root(self, path: Path) -> None:
        """``check_inside_root`` with the root resolved once per session."""
        if self.root is None:
            return
        root = Path(self.root)
        real_root = self._real(root)
        real = self._real_paths[path] = self._resolve(root, os.path.relpath(path, root))
        if os.path.commonpath([real, real_root]) != real_root:
            check_inside_root(self.root, path)  # resolves afresh, and raises its refusal

    def _leaves(self, base: Path, directory: str) -> bool:
        """Whether ``base/directory`` resolves outside ``base`` (a symbolic link carries it out)."""
        real_base = self._real(base)
        return os.path.commonpath([self._resolve(base, directory), real_base]) != real_base

    def manifest_path(self, manifest: str) -> Path:
        return host_path(self.root, manifest, "MANIFEST")

    # -- sessions --------------------------------------------------------------------------

    @contextlib.contextmanager
    def session(self, write: bool) -> Iterator[sqlite3.Connection | None]:
        """Lock, open and check the database. Read-only sessions yield None when there is none."""
        with self._resolving():
            if write:
                self._make_db_directory()
            elif not self.db.exists():
                yield None
                return
            with self._locked(exclusive=write), self.database_errors():
                connection = self._connect(write)
                try:
                    # A database killed before its first commit holds no tables: nothing registered.
                    yield connection if write or self._has_schema(connection) else None
                finally:
                    connection.close()

    def _make_db_directory(self) -> None:
        self._check_inside_root(self.db.parent)  # before mkdir: create nothing outside
        try:
            self.db.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ApplyError(f"cannot create the registry directory: {exc.strerror}", str(self.db.parent)) from exc

    @contextlib.contextmanager
    def _locked(self, exclusive: bool) -> Iterator[None]:
        try:
            fd = os.open(self.lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            if exclusive:
                raise ApplyError(f"cannot open the lock file: {exc.strerror}; nothing was changed", str(self.lock)) from exc
            yield  # a reader without write access to the directory reads without the lock
            return
        try:
            deadline = time.monotonic() + WAIT_SECONDS
            while True:
                try:
                    fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise ApplyError(
                            f"another ns-strip process held the registry lock for {WAIT_SECONDS:g} s; nothing was changed",
                            str(self.lock),
                        ) from None
                    time.sleep(0.05)
            yield
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def database_errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.OperationalError as exc:
            text = str(exc)
            if "locked" in text or "busy" in text:
                raise ApplyError(f"the registry database stayed busy ({text}); nothing was changed", str(self.db)) from exc
            if "full" in text:
                raise ApplyError(f"cannot write the registry ({text}); the next registry command finishes the change",
                                 str(self.db)) from exc
            raise self.unreadable(text) from exc
        except sqlite3.DatabaseError as exc:
            raise self.unreadable(str(exc)) from exc

    def unreadable(self, problem: str) -> BadInputError:
        return BadInputError(
            f"the registry database is corrupt or unreadable ({problem}); rebuild it from the installed "
            f"manifests with 'ns-strip registry rebuild'",
            str(self.db),
        )

    def _connect(self, write: bool, path: Path | None = None) -> sqlite3.Connection:
        path = path or self.db
        mode = "rwc" if write else ("rw" if os.access(path, os.W_OK) else "ro")
        uri = f"file:{urllib.parse.quote(str(path.absolute()))}?mode={mode}"
        connection = sqlite3.connect(uri, uri=True, timeout=WAIT_SECONDS, isolation_level=None)
        try:
            connection.execute("PRAGMA synchronous=FULL")
            self._check_schema(connection, write)
        except BaseException:
            connection.close()
            raise
        return connection

    @staticmethod
    def _has_schema(connection: sqlite3.Connection) -> bool:
        return connection.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0] > 0

    def _check_schema(self, connection: sqlite3.Connection, write: bool) -> None:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not tables:
            if write:
                connection.executescript(
                    "BEGIN IMMEDIATE;" + _SCHEMA
                    + f"INSERT INTO meta VALUES ('schema_version', '{SCHEMA_VERSION}'); COMMIT;"
                )
            return
        if "meta" not in tables:
            raise self.unreadable("not an ns-strip registry")
        row = connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None or row[0] != SCHEMA_VERSION:
            found = row[0] if row else "none"
            raise BadInputError(
                f"registry schema version {found} is not {SCHEMA_VERSION}, the one this ns-strip reads; "
                "use a matching ns-strip, or 'ns-strip registry rebuild'",
                str(self.db),
            )
        missing = [t for t in _TABLES if t not in tables]
        if missing:
            raise self.unreadable(f"tables missing: {', '.join(missing)}")

    @contextlib.contextmanager
    def transaction(self, connection: sqlite3.Connection) -> Iterator[None]:
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield
            self.checkpoint()  # a kill here: the transaction rolls back
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
        self.checkpoint()

    # -- commands --------------------------------------------------------------------------

    def add(self, manifest: Manifest, manifest_label: str, manifest_sha256: str, placeholders: str) -> bool:
        """Register (or re-register, on an upgrade) a package. Returns whether it was known."""
        with self.session(write=True) as connection:
            assert connection is not None
            self.settle_pending(connection, recovering=True)
            with self.transaction(connection):
                known, earlier = self._forget(connection, manifest.package)
                connection.execute(
                    "INSERT INTO packages VALUES (?, ?, ?, ?, ?)",
                    (manifest.package, manifest.site_dir, manifest_label, manifest_sha256, placeholders),
                )
                connection.executemany(
                    "INSERT INTO contributions VALUES (?, ?, ?, ?)",
                    [(manifest.site_dir, directory, manifest.package, json.dumps(manifest.portions.get(directory, [])))
                     for directory in manifest.namespaces],
                )
                self._mark_due(connection, earlier + [(manifest.site_dir, d) for d in manifest.namespaces])
            self.settle_pending(connection)
        return known

    def remove(self, package: str) -> bool:
        """Unregister a package; returns whether it was registered (removing twice is fine)."""
        with self.session(write=True) as connection:
            assert connection is not None
            self.settle_pending(connection, recovering=True)
            with self.transaction(connection):
                known, earlier = self._forget(connection, package)
                self._mark_due(connection, earlier)
            self.settle_pending(connection)
        return known

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
            for site_dir, directory in _depth_first(rows):
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
            _carry_out(change, base, self.checkpoint)
            done.append(change)
        return state, plan, (base / state.directory).is_dir()

    def _record_settled(self, connection: sqlite3.Connection,
                        settled: list[tuple[DirectoryState, DirectoryPlan, bool]]) -> None:
        with self.transaction(connection):
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

    def plan(self, state: DirectoryState, base: Path) -> DirectoryPlan:
        """What to do in one directory, from the bookkeeping and the files as they are now."""
        try:
            return self._plan(state, base)
        except OSError as exc:
            raise ApplyError(f"cannot read it: {exc.strerror or exc}; nothing more was changed",
                             str(base / state.directory)) from exc

    def _plan(self, state: DirectoryState, base: Path) -> DirectoryPlan:
        path = base / state.directory
        if self._leaves(base, state.directory):
            self.findings.append(Finding(
                "NS113", state.directory, "namespace directory is a symbolic link leaving its site dir; not touched",
                state.packages, {"site_dir": state.site_dir},
            ))
            return DirectoryPlan([], state.created_sha256 is not None)
        changes: list[Change] = []

        def change(action: str, relative: str, reason: str, code: str) -> None:
            changes.append(Change(action, state.site_dir, f"{state.directory}/{relative}", reason, code))

        init_sha = file_sha256(path / INIT)
        if os.path.lexists(path / PLACEHOLDER_TEMPORARY):
            change("remove", PLACEHOLDER_TEMPORARY, "unfinished placeholder", "NS515" if not state.packages else "NS514")
        if state.packages and state.wants_placeholder:
            if init_sha is None and path.is_dir():
                change("create", INIT, "namespace placeholder", "NS512")
                return DirectoryPlan(changes, True)
            # A file with exactly the placeholder's bytes was written by the toolkit (this is how
            # a placeholder created just before a crash, or found by 'rebuild', is taken back).
            return DirectoryPlan(changes, init_sha == PLACEHOLDER_SHA256)

        leaving = "no package uses the namespace any more" if not state.packages else "placeholder no longer wanted"
        ours = state.created_sha256 is not None and init_sha == state.created_sha256
        if ours:
            change("remove", INIT, leaving, "NS515" if not state.packages else "NS514")
        if not path.is_dir():
            return DirectoryPlan(changes, False)
        gone = {c.path.rpartition("/")[2] for c in changes}  # so far only direct children
        init_gone = ours or init_sha is None
        pycache = path / PYCACHE
        if init_gone and pycache.is_dir() and not pycache.is_symlink():
            names = sorted(os.listdir(pycache))
            removed = {base / c.path for c in changes if c.action == "remove"}
            stale = [n for n in names if _is_stale_bytecode(pycache / n, not state.packages, removed)]
            for name in stale:
                change("remove", f"{PYCACHE}/{name}", "bytecode of a module that no longer exists",
                       "NS515" if not state.packages else "NS514")
            if len(stale) == len(names) and (stale or not state.packages):
                change("rmdir", PYCACHE, "empty bytecode directory", "NS515" if not state.packages else "NS514")
                gone.add(PYCACHE)
        if not state.packages and all(name in gone for name in os.listdir(path)):
            change("rmdir", "", "no package uses the namespace any more", "NS515")
        return DirectoryPlan(changes, False)

    # -- verify, repair, rebuild ------------------------------------------------------------

    def verify(self, repair: bool = False) -> list[Finding]:
        """Drift between the bookkeeping and the files, after settling everything if ``repair``."""
        with self.session(write=repair) as connection:
            if connection is None:
                return []
            if repair:
                with self.transaction(connection):
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
            raise self.unreadable(f"integrity check: {check[0] if check else 'no answer'}")
        findings: list[Finding] = []
        pending = set(connection.execute("SELECT site_dir, directory FROM pending").fetchall())
        for site_dir, directory in sorted(pending):
            findings.append(Finding(
                "NS510", directory,
                "an interrupted registry command left this namespace directory unsettled; the next "
                "'ns-strip registry' command settles it (or run 'ns-strip registry verify --repair')",
                details={"site_dir": site_dir},
            ))
        for site_dir, directory in _depth_first(self._known_directories(connection)):
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
        findings = [Finding(c.code, c.path, f"{c.reason}: due to be {_due[c.action]}; run "
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
                missing = [n for n in json.loads(portions) if not os.path.lexists(base / directory / n)]
                if missing:
                    findings.append(Finding(
                        "NS516", directory,
                        f"{package.name} is registered but its portions {', '.join(missing)} are gone; if the "
                        f"package was removed, run 'ns-strip registry remove {package.name}'",
                        (package.name,), dict(details, missing=missing),
                    ))
        return findings

    def rebuild(self, manifests: list[tuple[Manifest, str, str]], placeholders: str | None) -> str | None:
        """Replace the database by one made from installed manifests (manifest, label, sha256).

        Returns where an unreadable old database was moved, if it was.
        """
        with self._resolving():
            self._make_db_directory()
            with self._locked(exclusive=True), self.database_errors():
                moved = self._set_aside_if_unreadable()
                fresh = self.db.with_name(self.db.name + ".rebuild")
                for leftover in _database_files(fresh):
                    leftover.unlink(missing_ok=True)
                connection = self._connect(write=True, path=fresh)
                try:
                    with self.transaction(connection):
                        for manifest, label, sha256 in manifests:
                            mode = placeholders or self._found_placeholder_mode(manifest)
                            connection.execute("INSERT INTO packages VALUES (?, ?, ?, ?, ?)",
                                               (manifest.package, manifest.site_dir, label, sha256, mode))
                            rows = [(manifest.site_dir, d, manifest.package, json.dumps(manifest.portions.get(d, [])))
                                    for d in manifest.namespaces]
                            connection.executemany("INSERT INTO contributions VALUES (?, ?, ?, ?)", rows)
                            connection.executemany("INSERT OR IGNORE INTO pending VALUES (?, ?)",
                                                   [row[:2] for row in rows])
                finally:
                    connection.close()
                for stale in _database_files(self.db)[1:]:
                    stale.unlink(missing_ok=True)  # a journal of the old database must not touch the new one
                self.checkpoint()
                os.replace(fresh, self.db)
                self.checkpoint()
                connection = self._connect(write=True)
                try:
                    self.settle_pending(connection)
                finally:
                    connection.close()
        return moved

    def _found_placeholder_mode(self, manifest: Manifest) -> str:
        base = self.site_path(manifest.site_dir)
        found = any(file_sha256(base / d / INIT) == PLACEHOLDER_SHA256 for d in manifest.namespaces)
        return "pkgutil" if found else "none"

    def _set_aside_if_unreadable(self) -> str | None:
        if not self.db.exists():
            return None
        try:
            self._connect(write=False).close()
            return None
        except (sqlite3.DatabaseError, BadInputError):
            pass
        aside = self.db.with_name(self.db.name + ".corrupt")
        for path in _database_files(self.db):
            if path.exists():
                os.replace(path, path.with_name(path.name.replace(self.db.name, aside.name, 1)))
        return str(aside)


_due = {"create": "created", "remove": "removed", "rmdir": "removed"}


def _database_files(db: Path) -> list[Path]:
    """The database and the files SQLite keeps beside it."""
    return [db] + [db.with_name(db.name + suffix) for suffix in ("-journal", "-wal", "-shm")]


def _is_stale_bytecode(path: Path, whole_directory: bool, removed: set[Path]) -> bool:
    """Bytecode in __pycache__ whose source is gone (or in ``removed``): the interpreter's leftover.

    While packages still use the directory only the bytecode of a missing ``__init__.py`` (a
    placeholder's) counts; once none does, that of every missing module.
    """
    if not path.name.endswith(".pyc") or path.is_symlink() or not path.is_file():
        return False
    if not whole_directory and not path.name.startswith("__init__."):
        return False
    try:
        source = Path(importlib.util.source_from_cache(str(path)))
    except (ValueError, NotImplementedError):
        return False
    return source in removed or not os.path.lexists(source)


def _carry_out(change: Change, base: Path, checkpoint: Checkpoints) -> None:
    """Do one step; each is safe to do again after a crash, and a step found done is done."""
    target = base / change.path
    try:
        if change.action == "create":
            _write_placeholder(target, checkpoint)
        elif change.action == "remove":
            target.unlink(missing_ok=True)
        elif change.action == "rmdir":
            try:
                target.rmdir()
            except FileNotFoundError:
                pass
            except OSError as exc:
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise  # something appeared since: the directory stays, and is retired
        _fsync_directory(target.parent)
    except OSError as exc:
        raise ApplyError(
            f"cannot {change.action} it: {exc.strerror or exc}; the next registry command finishes the change",
            str(target),
        ) from exc


def _write_placeholder(target: Path, checkpoint: Checkpoints) -> None:
    temporary = target.with_name(PLACEHOLDER_TEMPORARY)
    with open(temporary, "wb") as handle:
        handle.write(PLACEHOLDER)
        handle.flush()
        os.fsync(handle.fileno())
    checkpoint()
    try:
        os.link(temporary, target)  # unlike rename, never replaces a file that appeared meanwhile
    except FileExistsError:
        pass  # someone else's __init__.py: the plan next time sees it is not ours
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV):
            raise
        if not os.path.lexists(target):  # a file system without hard links
            os.rename(temporary, target)
    checkpoint()
    temporary.unlink(missing_ok=True)


def _fsync_directory(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return  # the directory itself was just removed
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a directory; the steps are still atomic
    finally:
        os.close(fd)
