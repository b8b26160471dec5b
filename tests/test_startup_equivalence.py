"""The start-up work changed how things are built, never what they do: each rewrite checked
against what it replaced (argparse's own width and formatters, dataclass semantics, the regex a
string test replaced). See docs/benchmarks.rst ("Start-up of every command")."""

from __future__ import annotations

import argparse
import ast
import copy
import pickle
import re
import shutil

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ns_strip import cli, clishared
from ns_strip.binfmt import Binary, BinaryImage
from ns_strip.extensions import ExtensionInfo, PythonTarget, import_path
from ns_strip.extnames import parse_extension_filename
from ns_strip.findings import CHECKS, Finding, FindingFilter
from ns_strip.report import Report
from ns_strip.scan import NamespaceEntry
from ns_strip.sources import DirListing

COLUMNS = [None, "", "abc", "0", "-3", "1", "30", "80", "120", "400"]


@pytest.mark.parametrize("columns", COLUMNS)
def test_help_width_is_what_argparse_would_compute(monkeypatch: pytest.MonkeyPatch, columns: str | None) -> None:
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    assert clishared.help_width() == shutil.get_terminal_size().columns - 2


def _help_with(parser: argparse.ArgumentParser, formatters: dict[type, type]) -> list[str]:
    """The help of ``parser`` and of every sub-parser below it, each parser's formatter class
    swapped through ``formatters`` (as given when none matches)."""
    texts = []
    pending = [parser]
    while pending:
        current = pending.pop(0)
        kept = current.formatter_class
        current.formatter_class = formatters.get(kept, kept)
        try:
            texts.append(current.format_help())
        finally:
            current.formatter_class = kept
        for action in current._actions:
            if isinstance(action, argparse._SubParsersAction):
                pending += list(dict.fromkeys(action.choices.values()))
    return texts


@pytest.mark.parametrize("columns", ["30", "80", "120"])
@pytest.mark.parametrize("command", [None, *cli.COMMANDS])
def test_help_is_argparse_s_own(monkeypatch: pytest.MonkeyPatch, command: str | None, columns: str) -> None:
    # Every parser (sub-parsers and theirs: registry, render, archive) formats as argparse's
    # HelpFormatter / RawDescriptionHelpFormatter would with no width given.
    monkeypatch.setenv("COLUMNS", columns)
    parser = cli.build_parser(command)
    ours = _help_with(parser, {})
    standard = _help_with(parser, {clishared.HelpFormatter: argparse.HelpFormatter,
                                   clishared.RawDescriptionHelpFormatter: argparse.RawDescriptionHelpFormatter})
    assert ours == standard
    assert len(ours) >= 2  # the top level and at least one command's parser were compared
    # None of them fell back to argparse's formatters (which would compare equal trivially).
    classes = {type(p._get_formatter()) for p in [parser, *parser._subparsers._group_actions[0].choices.values()]}
    assert classes <= {clishared.HelpFormatter, clishared.RawDescriptionHelpFormatter}, classes


def test_version_alone_is_the_version_of_the_whole_parser(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--version"], ["--version", "--json"], ["--bogus", "--version"]):
        with pytest.raises(SystemExit) as stopped:
            cli.main(argv)
        assert stopped.value.code == 0
        assert capsys.readouterr().out.startswith("ns-strip ")
    assert not any(isinstance(a, argparse._SubParsersAction)
                   for a in cli.build_parser("", with_commands=False)._actions)  # fmt: skip


def _extension() -> ExtensionInfo:
    image = BinaryImage("x86_64", 64, "little", ("PyInit_spam",), ("libc.so.6",), None, None)
    name = parse_extension_filename("spam.cpython-311-x86_64-linux-gnu.so")
    return ExtensionInfo("pkg/spam.cpython-311-x86_64-linux-gnu.so", name, "pkg.spam", Binary("elf", (image,)),
                         None, ("spam-dist",))


def test_frozen_value_classes_behave_as_the_frozen_dataclasses_did() -> None:
    info = _extension()
    same = _extension()
    assert info == same and hash(info) == hash(same) and info is not same
    assert info != info.replace(path="other.so") and info.replace(path="other.so").path == "other.so"
    assert info.replace(path="other.so").name is info.name  # a shallow copy, as dataclasses.replace
    with pytest.raises(TypeError):
        info.replace(no_such_field=1)
    with pytest.raises(AttributeError):
        info.path = "x"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del info.module
    with pytest.raises(AttributeError):
        info.not_a_field = 1  # type: ignore[attr-defined]
    assert info != (info.path, info.name) and info.binary != ("elf", info.binary.images)
    assert repr(PythonTarget("cpython", (3, 11))) == (
        "PythonTarget(implementation='cpython', version=(3, 11), free_threaded=False, evidence='')")
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        assert pickle.loads(pickle.dumps(info, protocol)) == info
    assert copy.deepcopy(info) == info and copy.copy(info) == info


def test_findings_keep_their_checks_and_defaults() -> None:
    with pytest.raises(ValueError, match="unknown finding code NS999"):
        Finding("NS999", "x", "y")
    first, second = Finding("NS101", "a", "b"), Finding("NS101", "a", "b")
    first.details["k"] = 1
    assert second.details == {}  # each finding its own details, as default_factory=dict gave
    with pytest.raises(TypeError):
        hash(first)  # a dict field: unhashable, as the frozen dataclass was
    assert first.replace(details=dict(first.details, site="s")).details == {"k": 1, "site": "s"}
    assert FindingFilter(("NS1",)) == FindingFilter(("NS1",), ()) and len({FindingFilter(), FindingFilter()}) == 1
    assert hash(CHECKS["NS101"]) == hash(copy.copy(CHECKS["NS101"]))


def test_mutable_value_classes_behave_as_the_dataclasses_did() -> None:
    listing, other = DirListing(), DirListing()
    listing.files.append("a")
    assert other.files == [] and listing != other and listing == DirListing(["a"], [], set())
    with pytest.raises(TypeError):
        hash(listing)
    assert repr(other) == "DirListing(files=[], subdirs=[], links=set())"
    report = Report()
    report.note("n")
    assert report == Report(lines=report.lines) and Report().findings is not Report().findings
    entry = NamespaceEntry("zope", "pkgutil", "pure", "zope/__init__.py", ["a"], "strip")
    data = entry.to_json()
    assert data == {"name": "zope", "style": "pkgutil", "purity": "pure", "init": "zope/__init__.py",
                    "distributions": ["a"], "action": "strip"}
    assert data["distributions"] is not entry.distributions  # a copy, as dataclasses.asdict made
    assert pickle.loads(pickle.dumps(listing)) == listing


_DATA_DIR = re.compile(r"[^/]+\.data/(?:purelib|platlib)/")  # what import_path matched before


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from(["a", ".", "/", "\n", ".data", "purelib", "platlib", "lib"]), max_size=10).map("".join))
def test_import_path_strips_what_the_regex_stripped(relpath: str) -> None:
    match = _DATA_DIR.match(relpath)
    assert import_path(relpath) == (relpath[match.end():] if match else relpath)


def test_purity_patterns_copy_and_pickle_whole() -> None:
    # Node and OneOf take their fields as keywords and as varargs: their own __reduce__ rebuilds
    # them (the base class's would pass the fields positionally and fail).
    from ns_strip import purity

    assert pickle.loads(pickle.dumps(purity.FORMS)) == purity.FORMS
    assert copy.deepcopy(purity.FORMS) == purity.FORMS
    one_of = purity.OneOf(purity.Node(ast.Name, id="a"), purity.Each(purity.Function("m", "f")))
    again = pickle.loads(pickle.dumps(one_of))
    assert again == one_of and again.patterns[0].fields == {"id": "a"}


def test_the_wheels_package_still_exports_every_name() -> None:
    # Its names are imported from their modules when first asked for (PEP 562).
    import importlib

    from ns_strip import wheels

    for name in wheels.__all__:
        module = importlib.import_module(f"ns_strip.wheels.{wheels._EXPORTS[name]}")
        assert getattr(wheels, name) is getattr(module, name)
    assert wheels.archive.MAX_TOTAL_UNCOMPRESSED == wheels.MAX_TOTAL_UNCOMPRESSED
    with pytest.raises(AttributeError):
        wheels.no_such_name  # noqa: B018
