"""The ``.pth`` lines of an artifact that run code at start-up, for the archive's census.

Each executed line (``site.py`` runs a line that starts with ``import`` and a space or tab) is
stored with its kind (``nspkg``, ``setuptools``, ``editable``, ``other``), as
:func:`ns_strip.pthaudit.line_kind` tells them apart; PEP 829 ignores all of them from Python
3.18. The findings about them are pthaudit's own (NS131-NS133), as ``scan`` gives them.
"""

from __future__ import annotations

from typing import Any

from ..errors import BadInputError
from ..pthaudit import LINE_KINDS, is_import_line, line_kind
from ..safeio import MAX_TEXT_BYTES
from ..sources import Source

KINDS = LINE_KINDS


def audit_pth(source: Source) -> list[dict[str, Any]]:
    """Every executable line of the ``.pth`` files at the top of ``source``, classified as
    :mod:`ns_strip.pthaudit` classifies them (its findings, NS131-NS133, go with them)."""
    root = source.dirs.get("")
    if root is None:
        return []
    found = []
    for filename in sorted(root.files):
        if not filename.endswith(".pth") or filename in root.links:
            continue
        try:
            data = source.read_bytes(filename, MAX_TEXT_BYTES)
        except BadInputError:
            continue  # not read: too large, not a regular file
        text = data.decode("utf-8", errors="replace").lstrip("\ufeff")
        for number, raw in enumerate(text.splitlines(), start=1):
            if not is_import_line(raw):
                continue  # site.py's own test: exactly these start an executable line
            kind, namespace = line_kind(filename, raw.strip())
            found.append({"path": filename, "line": number, "kind": kind, "namespace": namespace,
                          "text": raw.strip()[:200]})
    return found
