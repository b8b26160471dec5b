"""Parse the file names of compiled extension modules.

An extension's file name is ``<module>.<tag>.<so|pyd>`` or ``<module>.<so|pyd>``. The tag says
which interpreters will import the file; an interpreter only tries the suffixes in its own
``importlib.machinery.EXTENSION_SUFFIXES``, so a file whose tag it does not list is invisible
to it. Styles understood here:

- CPython on POSIX: ``cpython-311-x86_64-linux-gnu``, ``cpython-313t-…`` (free-threaded),
  ``cpython-37m-…`` and ``cpython-311d-…`` (old ABI flags), ``cpython-39-darwin``,
  ``cpython-311`` (no platform, as FreeBSD builds it);
- the stable ABI: ``abi3`` (and ``abi3t``, the free-threaded stable ABI);
- PyPy: ``pypy39-pp73-x86_64-linux-gnu``, ``pypy310-pp73-darwin``, ``pypy39-pp73-win_amd64``;
- Windows: ``cp311-win_amd64``, ``cp313t-win_arm64``, ``cp311-mingw_x86_64_ucrt_gnu``; a bare
  ``.pyd`` is Windows' own name for a stable-ABI (or any-version) extension.

Public API: :func:`parse_extension_filename`, :class:`ExtensionName`,
:func:`is_extension_filename`, :func:`tagged_filename`, :data:`EXTENSION_EXTENSIONS`.
"""

from __future__ import annotations

import enum
import functools
import re

from .slotted import FrozenSlotted, set_field

EXTENSION_EXTENSIONS = (".so", ".pyd")


class TagStyle(str, enum.Enum):
    NONE = "none"  # foo.so, foo.pyd
    CPYTHON = "cpython"  # cpython-311-x86_64-linux-gnu
    ABI3 = "abi3"  # abi3, abi3t
    PYPY = "pypy"  # pypy39-pp73-x86_64-linux-gnu
    WINDOWS = "windows"  # cp311-win_amd64
    UNKNOWN = "unknown"  # anything else: no interpreter imports the file under this name


class PlatformKind(str, enum.Enum):
    TRIPLET = "triplet"  # a GNU multiarch triplet: x86_64-linux-gnu, arm-linux-gnueabihf
    DARWIN = "darwin"
    WINDOWS = "windows"  # win32, win_amd64, win_arm64, mingw_x86_64…


class ExtensionName(FrozenSlotted):
    """What a file name says about an extension module."""

    __slots__ = ("filename", "module", "extension", "tag", "style", "implementation", "python_version", "abi3",
                 "free_threaded", "platform")

    filename: str
    module: str  # the base name Python imports the file as (``foo`` for ``foo.cpython-311….so``)
    extension: str  # ".so" or ".pyd"
    tag: str | None  # "cpython-311-x86_64-linux-gnu", None when untagged
    style: TagStyle
    implementation: str | None  # "cpython" or "pypy" when the tag names one
    python_version: tuple[int, int] | None
    abi3: bool
    free_threaded: bool
    platform: str | None  # "x86_64-linux-gnu", "darwin", "win_amd64"

    def __init__(self, filename: str, module: str, extension: str, tag: str | None, style: TagStyle,
                 implementation: str | None = None, python_version: tuple[int, int] | None = None,
                 abi3: bool = False, free_threaded: bool = False, platform: str | None = None) -> None:
        set_field(self, "filename", filename)
        set_field(self, "module", module)
        set_field(self, "extension", extension)
        set_field(self, "tag", tag)
        set_field(self, "style", style)
        set_field(self, "implementation", implementation)
        set_field(self, "python_version", python_version)
        set_field(self, "abi3", abi3)
        set_field(self, "free_threaded", free_threaded)
        set_field(self, "platform", platform)

    @property
    def untagged(self) -> bool:
        return self.style is TagStyle.NONE

    @property
    def platform_kind(self) -> PlatformKind | None:
        return platform_kind(self.platform)

    @property
    def python_version_text(self) -> str | None:
        if self.python_version is None:
            return None
        return f"{self.python_version[0]}.{self.python_version[1]}"


# (file extension, pattern, style, implementation). Named groups: major/minor (the Python
# version), flags (ABI flags, 't' meaning free-threaded), platform. Patterns are compiled by
# re's cache when first tried (_parse_tag is cached too): a run over Linux extensions never
# compiles the .pyd ones, one over CPython's tags not even PyPy's.
_TAG_PATTERNS = [
    (".so", r"cpython-(?P<major>\d)(?P<minor>\d+)(?P<flags>[dmt]*)(?:-(?P<platform>.+))?", TagStyle.CPYTHON, "cpython"),
    (".so", r"pypy(?P<major>\d)(?P<minor>\d+)-pp\d+(?:-(?P<platform>.+))?", TagStyle.PYPY, "pypy"),
    (".so", r"abi3(?P<flags>t?)", TagStyle.ABI3, None),
    (".pyd", r"cp(?P<major>\d)(?P<minor>\d+)(?P<flags>t?)-(?P<platform>win32|win_\w+|mingw_\w+)", TagStyle.WINDOWS,
     "cpython"),
    (".pyd", r"pypy(?P<major>\d)(?P<minor>\d+)-pp\d+-(?P<platform>win32|win_\w+)", TagStyle.PYPY, "pypy"),
]  # fmt: skip


def is_extension_filename(filename: str) -> bool:
    """Whether the name ends like an extension module (``.so``/``.pyd``) and has a base name."""
    return filename.endswith(EXTENSION_EXTENSIONS) and not filename.startswith(".")


def parse_extension_filename(filename: str) -> ExtensionName:
    """Split ``filename`` (a base name, no directory) into module name and tag.

    Raises ValueError when the name does not end in ``.so`` or ``.pyd``.
    """
    if not is_extension_filename(filename):
        raise ValueError(f"not an extension module file name: {filename!r}")
    stem, _, extension = filename.rpartition(".")
    extension = "." + extension
    module, dot, tag = stem.partition(".")
    if not dot:
        return ExtensionName(filename, module, extension, None, TagStyle.NONE)
    fields = _parse_tag(tag, extension)
    return ExtensionName(filename, module, extension, tag, **fields)


@functools.lru_cache(maxsize=256)
def _parse_tag(tag: str, extension: str) -> dict:
    # Cached: a directory's extensions share a handful of tags. Callers unpack the dict, never
    # change it.
    for pattern_extension, pattern, style, implementation in _TAG_PATTERNS:
        match = re.fullmatch(pattern, tag) if extension == pattern_extension else None
        if match:
            groups = match.groupdict()
            version = (int(groups["major"]), int(groups["minor"])) if groups.get("major") else None
            return {
                "style": style,
                "implementation": implementation,
                "python_version": version,
                "abi3": style is TagStyle.ABI3,
                "free_threaded": "t" in (groups.get("flags") or ""),
                "platform": groups.get("platform"),
            }
    return {"style": TagStyle.UNKNOWN}


def platform_kind(platform: str | None) -> PlatformKind | None:
    if platform is None:
        return None
    if platform == "darwin":
        return PlatformKind.DARWIN
    if platform == "win32" or platform.startswith(("win_", "mingw_")):
        return PlatformKind.WINDOWS
    if "-" in platform:
        return PlatformKind.TRIPLET
    return None


def normalize_tag(text: str) -> tuple[str | None, str | None]:
    """Turn a ``--python-tag`` value into (tag, extension).

    Accepts a tag (``cpython-311-x86_64-linux-gnu``), or a whole suffix as found in
    ``EXTENSION_SUFFIXES`` (``.cpython-311-x86_64-linux-gnu.so``, ``.abi3.so``). The extension is
    None when the value does not fix it; the tag is None for a bare ``.so``/``.pyd``.
    """
    text = text.strip()
    extension = None
    for candidate in EXTENSION_EXTENSIONS:
        if text.endswith(candidate):
            extension = candidate
            text = text[: -len(candidate)]
            break
    text = text.strip(".")
    return (text or None), extension


def tagged_filename(name: ExtensionName, tag: str | None, extension: str | None = None) -> ExtensionName:
    """The name ``name`` gets with ``tag`` (keeping its extension unless one is given)."""
    suffix = f".{tag}" if tag else ""
    return parse_extension_filename(f"{name.module}{suffix}{extension or name.extension}")
