"""What every adversarial case asserts: the promised exit code, one line on stderr and never a
traceback, nothing changed outside the root, and bounded time and memory.

Each command runs as ``python -m ns_strip`` in a child process under an address-space limit and
a timeout, so a hang or a memory blow-up fails the test instead of the machine.
"""

from __future__ import annotations

import hashlib
import os
import resource
import stat
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

# Generous for a Python process with every dependency imported, far below what the attacks
# found (hundreds of MB to GB).
MEMORY_LIMIT = 512 << 20
TIMEOUT = 60


def _limit_memory(limit: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def run_limited(*args: str, memory: int = MEMORY_LIMIT, timeout: float = TIMEOUT,
                env: dict[str, str] | None = None, cwd: str | os.PathLike[str] | None = None,
                ) -> subprocess.CompletedProcess[str]:
    """``python -m ns_strip ARGS`` under a memory limit; a timeout raises (a hang is a failure)."""
    return subprocess.run(
        [sys.executable, "-m", "ns_strip", *args],
        capture_output=True, text=True, timeout=timeout, cwd=cwd,
        env={**os.environ, **(env or {})}, preexec_fn=lambda: _limit_memory(memory),
    )


def assert_clean_exit(result: subprocess.CompletedProcess[str], allowed: Iterable[int]) -> None:
    """The exit code is one the contract allows here; an error is one line naming the problem."""
    allowed = set(allowed)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode in allowed, (result.returncode, result.stderr)
    if result.returncode in (2, 3, 4):
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("ns-strip: error: "), result.stderr


def fingerprint(root: Path) -> dict[str, tuple]:
    """Every entry below ``root`` (itself included) with its type, mode and content hash or link
    target, without following links: equal fingerprints mean nothing there changed."""
    result: dict[str, tuple] = {}

    def entry(path: Path, rel: str) -> None:
        info = os.lstat(path)
        mode = stat.S_IMODE(info.st_mode)
        if stat.S_ISLNK(info.st_mode):
            result[rel] = ("link", os.readlink(path))
        elif stat.S_ISDIR(info.st_mode):
            result[rel] = ("dir", mode)
        elif stat.S_ISREG(info.st_mode):
            result[rel] = ("file", mode, hashlib.sha256(path.read_bytes()).hexdigest())
        else:
            result[rel] = ("special", stat.S_IFMT(info.st_mode), mode)

    entry(root, ".")
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            path = Path(dirpath) / name
            entry(path, path.relative_to(root).as_posix())
    return result


class Sentinel:
    """A directory outside the root that no command may change: files, a subdirectory, a link."""

    def __init__(self, path: Path) -> None:
        self.path = path
        (path / "sub").mkdir(parents=True)
        (path / "precious.txt").write_bytes(b"outside the root\n")
        (path / "__init__.py").write_bytes(b"# not ns-strip's to touch\n")
        (path / "sub" / "data.bin").write_bytes(os.urandom(64))
        os.symlink("precious.txt", path / "link")
        self.before = fingerprint(path)

    def assert_unchanged(self) -> None:
        assert fingerprint(self.path) == self.before
