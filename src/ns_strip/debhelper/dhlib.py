"""debhelper's conventions for a helper written in Python.

Package selection and option parsing are debhelper's own: a short Perl program runs
``Debian::Debhelper::Dh_Lib``'s ``init()`` on the helper's arguments and reports the result as
JSON. So ``-p``/``-N``/``-i``/``-a``, ``-O`` (options ``dh`` passes to every helper, ignored
when not understood), ``-P``, ``-n``, ``-X``, ``DH_OPTIONS``, ``DH_INTERNAL_OPTIONS``, build
profiles, architecture wildcards, compat checks, ``DH_VERBOSE``/``DH_QUIET``/``DH_NO_ACT`` and
the per-package config file lookup behave exactly as for every other ``dh_*`` helper, error
messages included, and cannot drift from the installed debhelper. The rest (echoing commands,
the debhelper log) is small and follows ``Dh_Lib`` here.
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import BadInputError, UsageError

# Reads the arguments the way every debhelper helper does, then says what it found. The
# helper's own options are declared to Dh_Getopt, which then accepts them directly and
# through -O. The debhelper log is written by the helper itself, once it has succeeded.
_DH_LIB_PROGRAM = r"""
BEGIN { $0 = shift(@ARGV); }
use strict;
use warnings;
use Debian::Debhelper::Dh_Lib;
use JSON::PP ();
my $config_name = shift(@ARGV);
my @own = @{ JSON::PP::decode_json(shift(@ARGV)) };
my %values;
my %spec;
for my $own (@own) {
    (my $name = $own) =~ s/!$//;
    $values{$name} = [];
    if ($own =~ /!$/) {  # a flag: --name or --no-name, reported as yes or no
        $spec{"$name!"} = sub { push @{$values{$name}}, $_[1] ? "yes" : "no" };
    } else {
        $spec{"$name=s"} = $values{$name};
    }
}
init(options => \%spec);
inhibit_log();
print JSON::PP->new->canonical->encode({
    packages => [map {
        +{ name => $_, tmpdir => tmpdir($_), config => (pkgfile($_, $config_name) || undef) }
    } @{$dh{DOPACKAGES}}],
    no_act => $dh{NO_ACT} ? 1 : 0,
    verbose => $dh{VERBOSE} ? 1 : 0,
    quiet => $dh{QUIET} ? 1 : 0,
    no_scripts => $dh{NOSCRIPTS} ? 1 : 0,
    exclude => $dh{EXCLUDE} // [],
    arguments => $dh{ARGV} // [],
    options => \%values,
    write_log => (compat(9, 1) || $ENV{DH_INTERNAL_OVERRIDE}) ? 1 : 0,
});
"""


@dataclasses.dataclass(frozen=True)
class DhPackage:
    name: str
    tmpdir: str  # debian/<package>, or what -P says
    config: str | None  # the package's config file (debian/<package>.<name>), if there is one


@dataclasses.dataclass(frozen=True)
class DhOptions:
    tool: str
    packages: list[DhPackage]
    no_act: bool
    verbose: bool
    quiet: bool
    no_scripts: bool  # -n: leave the maintainer scripts alone
    exclude: list[str]  # -X ITEM and DH_ALWAYS_EXCLUDE
    arguments: list[str]  # non-option arguments
    options: dict[str, list[str]]  # the helper's own options, each value as often as given
    write_log: bool


def parse_options(tool: str, argv: Sequence[str], own_options: Sequence[str], config_name: str) -> DhOptions | None:
    """Parse like a debhelper helper. None: debhelper decided there is nothing to do here.

    Every one of ``own_options`` takes a value and may be repeated (``--keep=A --keep=B``),
    except a name ending in ``!``: a flag (``--name``, ``--no-name``), reported as yes or no.
    Raises DhExit with debhelper's exit code when Dh_Lib refuses the arguments; it has
    printed why.
    """
    spec = json.dumps(list(own_options))
    try:
        done = subprocess.run(
            ["perl", "-e", _DH_LIB_PROGRAM, "--", tool, config_name, spec, *argv],
            stdout=subprocess.PIPE, check=False, text=True,
        )
    except OSError as exc:
        raise UsageError(f"cannot run perl to read the debhelper options: {exc.strerror or exc}") from exc
    if done.returncode != 0:
        sys.stdout.write(done.stdout)  # e.g. the usage text of -h
        raise DhExit(done.returncode)
    if not done.stdout.strip():
        return None  # Dh_Lib printed a warning (no packages of that kind) and stopped
    try:
        raw: dict[str, Any] = json.loads(done.stdout)
    except ValueError as exc:
        raise UsageError(f"cannot read what debhelper's option parser reported: {done.stdout[:200]!r}") from exc
    return DhOptions(
        tool=tool,
        packages=[DhPackage(p["name"], p["tmpdir"], p["config"]) for p in raw["packages"]],
        no_act=bool(raw["no_act"]),
        verbose=bool(raw["verbose"]),
        quiet=bool(raw["quiet"]),
        no_scripts=bool(raw["no_scripts"]),
        exclude=list(raw["exclude"]),
        arguments=list(raw["arguments"]),
        options={name: list(values) for name, values in raw["options"].items()},
        write_log=bool(raw["write_log"]),
    )


class DhExit(Exception):
    """Stop with this exit code; the reason has been printed already."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


# -- output, as Dh_Lib prints it ----------------------------------------------------------------

_SAFE_WORD = re.compile(r"""([\s!"$()*+#;<>?@\[\]\\`|~])""")
_QUOTED_WORD = re.compile(r"""([\n`$"\\])""")


def escape_shell(words: Sequence[str]) -> str:
    """A command line as Dh_Lib's escape_shell writes it (what ``DH_VERBOSE`` shows)."""
    escaped = []
    for word in words:
        if re.search(r"\s", word):
            escaped.append('"' + _QUOTED_WORD.sub(r"\\\1", word) + '"')
        else:
            escaped.append(_SAFE_WORD.sub(r"\\\1", word))
    return " ".join(escaped)


def verbose_print(options: DhOptions, message: str) -> None:
    if options.verbose:
        print(f"\t{message}", flush=True)


def nonquiet_print(options: DhOptions, message: str) -> None:
    if not options.quiet:
        print(f"\t{message}", flush=True)


def warning(options: DhOptions, message: str) -> None:
    print(f"{options.tool}: warning: {message}", file=sys.stderr, flush=True)


def error_line(tool: str, message: str) -> str:
    return f"{tool}: error: {message}"


# -- the debhelper log -------------------------------------------------------------------------


def write_log(options: DhOptions, packages: Sequence[str]) -> None:
    """Record a successful run in debian/<package>.debhelper.log, where Dh_Lib would.

    Dh_Lib does this in compat 9 and below, and for helpers run from an override target.
    """
    if not options.write_log or options.no_act or not Path("debian/control").is_file():
        return
    for package in packages:
        with open(Path("debian") / f"{package}.debhelper.log", "a", encoding="utf-8") as handle:
            handle.write(options.tool + "\n")


# -- per-package config files -------------------------------------------------------------------


def read_config(path: str, directives: Mapping[str, Sequence[str] | None]) -> list[tuple[str, str]]:
    """``directive value`` lines; ``#`` starts a comment. ``directives`` maps each name to its
    allowed values (None: any one word or glob). Every problem names the file and line."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise BadInputError(f"not UTF-8 ({exc.reason} at byte {exc.start})", path) from exc
    except OSError as exc:
        raise BadInputError(f"cannot read: {exc.strerror}", path) from exc
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        name, values = words[0], words[1:]
        if name not in directives:
            known = ", ".join(directives)
            raise BadInputError(f"line {number}: unknown directive {name!r} (known: {known})", path)
        if len(values) != 1:
            raise BadInputError(f"line {number}: {name} takes exactly one value", path)
        allowed = directives[name]
        if allowed is not None and values[0] not in allowed:
            raise BadInputError(
                f"line {number}: {name} {values[0]!r} is not one of {', '.join(allowed)}", path
            )
        entries.append((name, values[0]))
    return entries
