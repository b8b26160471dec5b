"""Compiled extension modules: what one is (from its file name and its binary), and what is
wrong with it. ``ns-strip ext`` is built on this; ``scan`` and ``check`` call it too.

Public API:

- :func:`inspect_extension` ``(stream, relpath, *, distributions=()) -> ExtensionInfo``: read
  one file (a seekable binary stream); never raises for a bad binary, which is recorded as
  ``ExtensionInfo.problem``.
- :func:`inspect_extension_file` ``(path, relpath, *, distributions=()) -> ExtensionInfo``.
- :func:`check_extension` ``(info, *, target=None) -> list[Finding]``: NS201, NS203, NS204,
  NS205, and NS121 for a FIFO, socket or device found where a binary was expected. ``target`` is the interpreter the file is installed for, see :func:`python_target`.
- :func:`namespace_takeovers` ``(extensions, namespaces) -> list[Finding]``: NS202 for every
  extension whose dotted module name is one of ``namespaces``.
- :func:`tag_contradictions` ``(name, binary, target=None) -> list[str]``: why a file name's
  tag does not fit a binary (the reasons behind NS203; also used to vet a rename).
- :func:`python_target` ``(path) -> PythonTarget | None``: the interpreter a path such as
  ``lib/python3.11/site-packages/…`` belongs to.
- :func:`module_name` ``(relpath) -> str | None``: the dotted module name a file is imported as.
- :func:`exports_own_init` ``(info) -> bool``: the binary exports the init function its name
  promises (the opposite of NS201).
- :func:`is_shared_library` ``(info) -> bool``: a plain library that merely ends in ``.so``
  (``libfoo.so`` inside a package), which tree walks skip.
"""

from __future__ import annotations

import os
import posixpath
import re
from pathlib import Path

from .binfmt import MalformedBinary, Reader, init_symbol_names, read_binary
from .binfmt import elf as elf_format
from .extnames import PlatformKind, TagStyle, parse_extension_filename
from .errors import BadInputError
from .findings import Finding
from .safeio import NotRegularFileError, open_regular_sized
from .slotted import FrozenSlotted, set_field

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (see slotted.py)
if TYPE_CHECKING:
    from collections.abc import Collection, Iterable
    from typing import Any, BinaryIO

    from .binfmt import Binary, BinaryImage
    from .extnames import ExtensionName

FORMAT_NAMES = {"elf": "an ELF shared object", "pe": "a Windows PE DLL", "macho": "a Mach-O bundle"}
FORMAT_SHORT_NAMES = {"elf": "ELF", "pe": "PE", "macho": "Mach-O"}


class PythonTarget(FrozenSlotted):
    """The interpreter a site dir belongs to, as its path says (``python3.11t/``)."""

    __slots__ = ("implementation", "version", "free_threaded", "evidence")

    implementation: str  # "cpython" or "pypy"
    version: tuple[int, int]
    free_threaded: bool
    evidence: str  # the path component that says so

    def __init__(self, implementation: str, version: tuple[int, int], free_threaded: bool = False,
                 evidence: str = "") -> None:
        set_field(self, "implementation", implementation)
        set_field(self, "version", version)
        set_field(self, "free_threaded", free_threaded)
        set_field(self, "evidence", evidence)

    @property
    def version_text(self) -> str:
        return f"{self.version[0]}.{self.version[1]}{'t' if self.free_threaded else ''}"


class ExtensionInfo(FrozenSlotted):
    """One extension module: its name, what its binary says, and why it could not be read."""

    __slots__ = ("path", "name", "module", "binary", "problem", "distributions", "special")

    path: str  # POSIX, relative to the scanned dir or wheel root
    name: ExtensionName
    module: str | None  # dotted import name, None when the path is not importable
    binary: Binary | None
    problem: str | None  # why the binary could not be read
    distributions: tuple[str, ...]
    special: str | None  # what was found instead of a regular file (FIFO, socket, device): NS121

    def __init__(self, path: str, name: ExtensionName, module: str | None, binary: Binary | None = None,
                 problem: str | None = None, distributions: tuple[str, ...] = (), special: str | None = None) -> None:
        set_field(self, "path", path)
        set_field(self, "name", name)
        set_field(self, "module", module)
        set_field(self, "binary", binary)
        set_field(self, "problem", problem)
        set_field(self, "distributions", distributions)
        set_field(self, "special", special)

    @property
    def exported(self) -> tuple[str, ...]:
        return self.binary.exported_modules if self.binary else ()

    def to_json(self) -> dict[str, Any]:
        binary = self.binary
        first: BinaryImage | None = binary.images[0] if binary else None
        data: dict[str, Any] = {
            "path": self.path,
            "module": self.module,
            "exported": list(self.exported),
            "format": binary.format if binary else None,
            "tag": self.name.tag,
            "abi3": self.name.abi3 or self._bare_pyd_abi3(),
            "machine": binary.machine if binary else None,
            "platform": self.name.platform,
            "implementation": self.name.implementation,
            "python_version": self.name.python_version_text,
            "free_threaded": self.name.free_threaded,
            "word_size": first.word_size if first else None,
            "byte_order": first.byte_order if first else None,
            "init_symbols": list(binary.init_symbols) if binary else [],
            "needed": list(first.needed) if first else [],
            "soname": first.soname if first else None,
        }
        if binary and len(binary.images) > 1:
            data["architectures"] = [image.machine for image in binary.images]
        if self.problem:
            data["problem"] = self.problem
        return data

    def _bare_pyd_abi3(self) -> bool:
        # Windows has no abi3 tag: a stable-ABI .pyd is a bare .pyd that links python3.dll.
        return bool(self.name.untagged and self.name.extension == ".pyd" and self.binary
                    and any(_pe_python(lib) == "abi3" for lib in self.binary.images[0].needed))  # fmt: skip


def inspect_extension(stream: BinaryIO | Reader, relpath: str, *, distributions: Iterable[str] = ()) -> ExtensionInfo:
    """Read the extension at ``relpath`` from ``stream`` (or a :class:`~.binfmt.Reader`); a bad
    binary becomes ``problem``."""
    name = parse_extension_filename(posixpath.basename(relpath))
    try:
        binary: Binary | None = read_binary(stream, init_symbol_names(name.module))
        problem = None
    except MalformedBinary as exc:
        binary, problem = None, str(exc)
    return ExtensionInfo(relpath, name, _module_name(relpath, name), binary, problem, tuple(distributions))


def inspect_extension_file(path: str | os.PathLike[str], relpath: str, *, distributions: Iterable[str] = (),
                           follow_links: bool = False) -> ExtensionInfo:
    """:func:`inspect_extension` on a file; a file that cannot be read is a ``problem`` too.

    Opened through :mod:`.safeio`: a FIFO, socket or device is never waited on but recorded as
    ``special`` (NS121), and a link is not followed unless ``follow_links`` (a file the user
    named, not one found in a tree).
    """
    def unreadable(problem: str, special: str | None = None) -> ExtensionInfo:
        name = parse_extension_filename(posixpath.basename(relpath))
        return ExtensionInfo(relpath, name, module_name(relpath), None, problem, tuple(distributions), special)

    try:
        fd, size = open_regular_sized(path, follow_links=follow_links)
    except NotRegularFileError as exc:
        return unreadable(f"a {exc.kind}, not a regular file; not read", exc.kind)
    except BadInputError as exc:
        return unreadable(exc.message)
    try:
        return inspect_extension(Reader.of_fd(fd, size), relpath, distributions=distributions)
    except OSError as exc:
        return unreadable(f"cannot read: {exc.strerror or exc}")
    finally:
        os.close(fd)


_DATA_SCHEMES = ("purelib/", "platlib/")  # of equal length


def import_path(relpath: str) -> str:
    """``relpath`` as the import system sees it: a wheel's ``*.data/platlib/`` prefix removed."""
    # ``<name>.data/purelib/`` or ``<name>.data/platlib/`` (a name of one character at least)
    # at the start; asked for every extension, so by string methods rather than a regex.
    first, _, rest = relpath.partition("/")
    if len(first) > len(".data") and first.endswith(".data") and rest.startswith(_DATA_SCHEMES):
        return rest[len(_DATA_SCHEMES[0]) :]
    return relpath


def module_name(relpath: str) -> str | None:
    return _module_name(relpath, parse_extension_filename(posixpath.basename(relpath)))


def _module_name(relpath: str, name: ExtensionName) -> str | None:
    # ``name`` is the parsed base name of ``relpath`` (which import_path leaves as it is): a
    # caller that has parsed it already does not parse it again.
    *packages, _ = import_path(relpath).split("/")
    parts = [*packages, name.module]
    return ".".join(parts) if all(part.isidentifier() for part in parts) else None


_TARGET = re.compile(r"(?:^|/)(python|pypy)(\d)\.(\d+)(t?)(?:/|$)")


def python_target(path: str | Path) -> PythonTarget | None:
    """The interpreter whose directory ``path`` lies in (``…/python3.11/site-packages/…``)."""
    text = Path(path).as_posix()
    matches = list(_TARGET.finditer(text))
    if not matches:
        return None
    match = matches[-1]
    implementation = "cpython" if match[1] == "python" else "pypy"
    evidence = match[0].strip("/") + "/"
    return PythonTarget(implementation, (int(match[2]), int(match[3])), bool(match[4]), evidence)


def is_shared_library(info: ExtensionInfo) -> bool:
    """A readable ``.so`` with no ABI tag (or a tag no Python uses) and no init function is an
    ordinary shared library, not an extension module: a tree walk leaves it alone."""
    return (
        info.binary is not None
        and info.name.extension == ".so"
        and info.name.style in (TagStyle.NONE, TagStyle.UNKNOWN)
        and not any(image.init_symbols for image in info.binary.images)
    )


def check_extension(info: ExtensionInfo, *, target: PythonTarget | None = None) -> list[Finding]:
    """NS201, NS203, NS204 and NS205 for one extension (NS121 alone for a special file)."""

    def finding(code: str, message: str, **details: Any) -> Finding:
        return Finding(code, info.path, message, info.distributions, details)

    if info.special is not None:
        return [finding("NS121", f"{info.problem}")]
    if info.binary is None:
        return [finding("NS205", f"malformed binary: {info.problem}")]
    name, binary = info.name, info.binary
    if not any(image.init_symbols for image in binary.images):
        # pycryptodome's .abi3.so files are loaded with ctypes, never imported: a library with
        # an extension's name is no broken extension (issue 12).
        return [finding("NS210", f"exports no module init function at all: a shared library (loaded with "
                                 f"ctypes or linked), not an extension module; 'import {info.module or name.module}' "
                                 "is not how it is used")]
    findings = []
    expected = init_symbol_names(name.module)
    for image in binary.images:
        if not _exports_init(image, expected):
            where = f" ({image.machine} slice)" if len(binary.images) > 1 else ""
            exports = ", ".join(image.init_symbols) or "no module init function"
            findings.append(finding(
                "NS201",
                f"exports {exports}{where}, not {expected[0]}: 'import {info.module or name.module}' cannot load it",
                expected=expected[0], init_symbols=list(image.init_symbols),
            ))  # fmt: skip
    if name.style is TagStyle.UNKNOWN:
        findings.append(finding(
            "NS203", f"'{name.tag}' is not an ABI tag any Python imports: no interpreter finds '{name.module}' here"
        ))  # fmt: skip
    else:
        reason = untagged_reason(info)
        if reason:
            findings.append(finding("NS204", reason))
    for reason in tag_contradictions(name, binary, target):
        findings.append(finding("NS203", reason))
    return findings


def exports_own_init(info: ExtensionInfo) -> bool:
    """Whether every image exports the init function the file name promises."""
    expected = init_symbol_names(info.name.module)
    return info.binary is not None and all(_exports_init(image, expected) for image in info.binary.images)


def _exports_init(image: BinaryImage, expected: tuple[str, ...]) -> bool:
    return not set(image.init_symbols).isdisjoint(expected)


def untagged_reason(info: ExtensionInfo) -> str | None:
    """Why an untagged file deserves NS204, or None (tagged, or a stable-ABI bare ``.pyd``)."""
    if not info.name.untagged or info.binary is None:
        return None
    if info.name.extension == ".so":
        return "no ABI tag: every Python version will try to import it (ns-strip ext --rename adds one)"
    linked = [lib for image in info.binary.images for lib in image.needed if _pe_python(lib) not in (None, "abi3")]
    if linked:
        return f"no ABI tag, but it links {linked[0]}: other Python versions will try to import it"
    return None


def tag_contradictions(name: ExtensionName, binary: Binary, target: PythonTarget | None = None) -> list[str]:
    """Why the file name ``name`` does not fit ``binary`` (or the interpreter ``target``)."""
    reasons = _format_contradiction(name, binary)
    if not reasons:
        reasons += [r for image in binary.images if (r := _machine_contradiction(name, binary, image))]
    reasons += _python_contradictions(name, binary, target)
    return reasons


def _format_contradiction(name: ExtensionName, binary: Binary) -> list[str]:
    kind = name.platform_kind
    expected = {PlatformKind.TRIPLET: "elf", PlatformKind.DARWIN: "macho", PlatformKind.WINDOWS: "pe"}.get(kind)
    if name.extension == ".pyd" and binary.format != "pe":
        return [f"named .pyd (a Windows DLL) but the binary is {FORMAT_NAMES[binary.format]}"]
    if name.extension == ".so" and binary.format == "pe":
        return [f"named .so but the binary is {FORMAT_NAMES['pe']}"]
    if expected and binary.format != expected:
        return [f"tagged for {name.platform} but the binary is {FORMAT_NAMES[binary.format]}"]
    return []


def _describe(image: BinaryImage, binary_format: str) -> str:
    abi = f", {image.abi}" if image.abi else ""
    return f"{image.machine} {FORMAT_SHORT_NAMES[binary_format]} ({image.word_size}-bit{abi})"


def _machine_contradiction(name: ExtensionName, binary: Binary, image: BinaryImage) -> str | None:
    platform = name.platform
    if platform is None:
        return None
    tagged = f"tagged for {platform} but the binary is {_describe(image, binary.format)}"
    if binary.format == "elf":
        arch, abi = elf_format.tag_arch(platform)
        if arch is None:
            return None  # a platform this table does not know is not evidence of anything
        if arch != image.machine:
            return tagged
        if abi in ("x32", "n32") and image.abi != abi or image.abi in ("x32", "n32") and abi != image.abi:
            return tagged
        if {abi, image.abi} == {"eabi", "eabihf"}:
            return tagged
    elif binary.format == "pe":
        from .binfmt import pe as pe_format  # a directory of ELF objects never needs it

        machine = pe_format.platform_machine(platform)
        if machine is not None and machine != image.machine:
            return tagged
    return None


_LIBPYTHON = re.compile(r"libpython(\d)\.(\d+)(t?)[a-z]*\.(?:so|dylib)", re.ASCII)
_PE_PYTHON = re.compile(r"python(\d)(\d+)(t?)(?:_d)?\.dll", re.ASCII | re.IGNORECASE)


def _pe_python(library: str) -> str | None:
    """``python311.dll`` -> "3.11", ``python3.dll`` -> "abi3", anything else -> None."""
    if library.lower() in ("python3.dll", "python3_d.dll"):
        return "abi3"
    match = _PE_PYTHON.fullmatch(library)
    return f"{match[1]}.{match[2]}{match[3]}" if match else None


def _linked_python(binary: Binary) -> tuple[str, tuple[int, int], bool] | None:
    """The version-specific libpython a binary links, as (library, version, free-threaded)."""
    for image in binary.images:
        for library in image.needed:
            match = _LIBPYTHON.match(library) or _PE_PYTHON.fullmatch(library)
            if match:
                return library, (int(match[1]), int(match[2])), bool(match[3])
    return None


def _python_contradictions(name: ExtensionName, binary: Binary, target: PythonTarget | None) -> list[str]:
    reasons: list[str] = []
    tagged = name.python_version
    if tagged is None and not name.abi3:
        return reasons  # untagged or an unknown tag: nothing to contradict
    tag_text = f"{name.implementation or 'CPython'} {name.python_version_text}{'t' if name.free_threaded else ''}"
    if target is not None and tagged is not None:
        implementation_differs = name.implementation is not None and name.implementation != target.implementation
        if implementation_differs or tagged != target.version or name.free_threaded != target.free_threaded:
            reasons.append(f"tagged for {tag_text} but installed for Python {target.version_text} "
                           f"({target.evidence} in its path)")  # fmt: skip
    linked = _linked_python(binary)
    if linked is not None:
        library, version, free_threaded = linked
        if name.abi3:
            reasons.append(f"tagged abi3 but links {library}: only Python {version[0]}.{version[1]} can load it")
        elif tagged is not None and (version != tagged or free_threaded != name.free_threaded):
            reasons.append(f"tagged for {tag_text} but links {library}")
    return reasons


def namespace_takeovers(extensions: Iterable[ExtensionInfo], namespaces: Collection[str]) -> list[Finding]:
    """NS202 for each extension whose dotted module name is a namespace package.

    The import system looks for a module file after finding a directory without
    ``__init__.py``, so ``foo.cpython-311-….so`` beside a namespace ``foo/`` wins and every
    portion of ``foo`` becomes unimportable; beside a pkgutil-style ``foo/__init__.py``, the
    extension takes over as soon as that file is stripped.
    """
    return [
        Finding(
            "NS202",
            info.path,
            f"extension module {info.module} takes over namespace package {info.module}: "
            f"its portions become unimportable",
            info.distributions,
            {"namespace": info.module},
        )
        for info in extensions
        if info.module is not None and info.module in namespaces
    ]
