"""The debhelper integration: the ``dh_ns_strip`` helper, its ``dh`` sequence add-on and man page.

The files a Debian system needs are shipped here as package data, the one canonical copy, so
``ns-strip install-debhelper`` can put them in place after any ``pip install``:

* ``dh_ns_strip``: the helper (a Python script whose POD is its man page, as in debhelper);
* ``ns_strip.pm``: the sequence add-on behind ``Build-Depends: dh-sequence-ns-strip`` and
  ``dh $@ --with ns-strip``.

The helper's logic lives in :mod:`ns_strip.debhelper.helper`, debhelper's conventions in
:mod:`ns_strip.debhelper.dhlib`.
"""

from __future__ import annotations

import dataclasses
from importlib import resources

HELPER = "dh_ns_strip"
ADDON = "ns_strip.pm"


@dataclasses.dataclass(frozen=True)
class HelperFile:
    name: str  # in this package
    target: str  # where it goes, relative to the installation root
    mode: int


# Debian's layout: dh finds helpers on PATH and add-ons as Debian::Debhelper::Sequence::<name>
# (a '-' in the add-on's name becomes '_') in Perl's vendor library.
HELPER_FILES = (
    HelperFile(HELPER, f"usr/bin/{HELPER}", 0o755),
    HelperFile(ADDON, f"usr/share/perl5/Debian/Debhelper/Sequence/{ADDON}", 0o644),
)
MAN_PAGE = f"usr/share/man/man1/{HELPER}.1"


def read_helper_file(name: str) -> bytes:
    return resources.files(__name__).joinpath(name).read_bytes()
