"""The whitelist of statements a *pure* namespace ``__init__.py`` may hold, as data.

A statement is pure only if running it at import can have no effect other than the namespace
declaration: a docstring, ``pass``, a ``from __future__`` import, the import of ``pkgutil`` or
``pkg_resources`` that a declaration uses, the declaration itself, and the try/except that
tries pkg_resources and falls back to pkgutil. Everything else (any other node type of any
Python version, any other field value) is not in the list and so makes the file a hybrid.

Each allowed form is a :class:`Form`: a name, an example, and a *pattern* over the statement's
syntax tree. A pattern is:

- ``Node(ast.X, field=pattern, ...)``: a node of exactly type ``ast.X`` whose listed fields
  match; every field not listed must be empty (None, an empty list) or one of the few
  harmless defaults (``ctx``, ``type_comment``, ``kind``), so a new field that holds code
  never slips through;
- a plain value (str, int, None): that value; a ``frozenset``: one of its values;
- a list of patterns: a list of exactly those;
- ``Each(pattern)``: a non-empty list whose every item matches;
- ``Function(module, name)``: an expression that is ``module.name`` through an import the file
  made (or ``__import__('module')``), or a name that a ``from module import name`` bound;
- ``OneOf(pattern, ...)``: any one of the patterns;
- ``Block(forms)``: a non-empty statement list of those forms with its own import scope;
- a callable ``(value, scope) -> bool`` for the rare check that needs code.

Matching descends only as far as a pattern does, so it is bounded by the patterns, never by
how deep a hostile file nests its expressions.
"""

from __future__ import annotations

import ast
import enum
import itertools

from .slotted import FrozenSlotted, Slotted, set_field

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (see slotted.py)
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any


class Style(str, enum.Enum):
    PKGUTIL = "pkgutil"
    PKG_RESOURCES = "pkg_resources"


# The modules a declaration comes from, and the one function each provides for it.
DECLARATION_FUNCTIONS = {"pkgutil": "extend_path", "pkg_resources": "declare_namespace"}
# ``from __future__`` features: a compiler switch each, no code runs. (``barry_as_FLUFL`` changes
# the grammar, so it is left out; an unknown feature is a compile error.)
FUTURE_FEATURES = frozenset({
    "nested_scopes", "generators", "division", "absolute_import", "with_statement",
    "print_function", "unicode_literals", "generator_stop", "annotations",
})
# What the fallback may catch: a missing pkg_resources, nothing more. (``except Exception``
# would hide a broken import of anything.)
FALLBACK_EXCEPTIONS = frozenset({"ImportError", "ModuleNotFoundError"})
# Annotations of ``__path__: X = ...`` that evaluate to a value without running code: a builtin
# type, a string (never evaluated), or ``list[str]``.
ANNOTATION_NAMES = frozenset({"list", "object", "str"})
# Fields whose value never runs code, whatever it is.
_HARMLESS_FIELDS = frozenset({"ctx", "type_comment", "kind"})


# -- patterns -------------------------------------------------------------------------------


class Node(FrozenSlotted):
    __slots__ = ("type", "fields")

    type: type
    fields: dict[str, Any]

    def __init__(self, node_type: type, **fields: Any) -> None:
        set_field(self, "type", node_type)
        set_field(self, "fields", fields)

    def __reduce__(self) -> tuple[Any, ...]:  # its __init__ takes the fields as keywords
        return _node, (self.type, self.fields)


def _node(node_type: type, fields: dict[str, Any]) -> Node:
    return Node(node_type, **fields)


class Each(FrozenSlotted):
    __slots__ = ("item",)

    item: Any

    def __init__(self, item: Any) -> None:
        set_field(self, "item", item)


class OneOf(FrozenSlotted):
    __slots__ = ("patterns",)

    patterns: tuple[Any, ...]

    def __init__(self, *patterns: Any) -> None:
        set_field(self, "patterns", patterns)

    def __reduce__(self) -> tuple[Any, ...]:  # its __init__ takes the patterns one by one
        return OneOf, self.patterns


class Function(FrozenSlotted):
    __slots__ = ("module", "name")

    module: str
    name: str

    def __init__(self, module: str, name: str) -> None:
        set_field(self, "module", module)
        set_field(self, "name", name)


class Block(FrozenSlotted):
    __slots__ = ("forms",)

    forms: tuple[str, ...]  # names of the Forms allowed in the block

    def __init__(self, forms: tuple[str, ...]) -> None:
        set_field(self, "forms", forms)


class Form(FrozenSlotted):
    __slots__ = ("name", "example", "pattern", "style", "binds")

    name: str
    example: str
    pattern: Any
    style: Style | None  # the declaration style, for declaring forms
    binds: bool  # an import: binds names a declaration may use

    def __init__(self, name: str, example: str, pattern: Any, style: Style | None = None, binds: bool = False) -> None:
        set_field(self, "name", name)
        set_field(self, "example", example)
        set_field(self, "pattern", pattern)
        set_field(self, "style", style)
        set_field(self, "binds", binds)


# -- the scope of imports -------------------------------------------------------------------


class Scope:
    """The names imports of ``pkgutil``/``pkg_resources`` have bound so far, and which of those
    bindings a declaration used. An import with a binding nothing uses is other code (it runs
    an import for nothing), and blocks stripping."""

    def __init__(self, parent: Scope | None = None) -> None:
        # local name -> (module, imported attribute or None for the module itself, binding id)
        self.names: dict[str, tuple[str, str | None, int]] = dict(parent.names) if parent else {}
        self.imports: list[tuple[ast.stmt, tuple[int, ...]]] = []  # import statements, their binding ids
        self.used: set[int] = set(parent.used) if parent else set()
        self._ids = parent._ids if parent else itertools.count(1)  # unique across branches

    def bind(self, stmt: ast.stmt, *, track: bool = True) -> None:
        """Record the names an import binds (all of them: ``import os as pkgutil`` rebinds
        ``pkgutil``). ``track=False`` for an import that blocks stripping anyway."""
        bindings = []
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            for alias in stmt.names:
                local = alias.asname or alias.name
                origin = (alias.name, None) if isinstance(stmt, ast.Import) else (stmt.module or "", alias.name)
                binding = next(self._ids)
                self.names[local] = (*origin, binding)
                bindings.append(binding)
        if track:
            self.imports.append((stmt, tuple(bindings)))

    def resolve(self, node: ast.AST) -> tuple[str, str | None] | None:
        """What a name or ``__import__('mod')`` refers to; marks the binding used."""
        if type(node) is ast.Name and node.id in self.names:
            module, attribute, binding = self.names[node.id]
            self.used.add(binding)
            return (module, attribute)
        if (
            type(node) is ast.Call
            and type(node.func) is ast.Name
            and node.func.id == "__import__"
            and "__import__" not in self.names
            and len(node.args) == 1
            and not node.keywords
            and type(node.args[0]) is ast.Constant
            and node.args[0].value in DECLARATION_FUNCTIONS
        ):
            return (node.args[0].value, None)
        return None

    def unused(self) -> list[ast.stmt]:
        return [stmt for stmt, bindings in self.imports if not all(b in self.used for b in bindings)]


# -- the whitelist ---------------------------------------------------------------------------


def _is_str(value: Any, scope: Scope) -> bool:
    return isinstance(value, str)


def _local_name(value: Any, scope: Scope) -> bool:
    """``as NAME`` of an import: none, or a plain name that shadows nothing the forms rely on."""
    return value is None or (isinstance(value, str) and not (value.startswith("__") and value.endswith("__")))


def _name(identifier: str | frozenset[str]) -> Node:
    return Node(ast.Name, id=identifier)


_DECLARE_CALL_ARGS = {
    Style.PKGUTIL: [_name("__path__"), _name("__name__")],
    Style.PKG_RESOURCES: [_name("__name__")],
}


# What a branch of the fallback may hold: imports and declarations.
_DECLARING_BLOCK = ("module import", "pkgutil function import", "pkg_resources function import",
                    "pkgutil declaration", "annotated pkgutil declaration", "pkg_resources declaration")


def _pkgutil_call() -> Node:
    return Node(ast.Call, func=Function("pkgutil", "extend_path"), args=_DECLARE_CALL_ARGS[Style.PKGUTIL])


FORMS: tuple[Form, ...] = (
    Form("docstring", '"""Namespace package."""', Node(ast.Expr, value=Node(ast.Constant, value=_is_str))),
    Form("pass", "pass", Node(ast.Pass)),
    Form("future import", "from __future__ import absolute_import",
         Node(ast.ImportFrom, module="__future__", level=0,
              names=Each(Node(ast.alias, name=FUTURE_FEATURES, asname=None)))),
    Form("module import", "import pkgutil",
         Node(ast.Import, names=Each(Node(ast.alias, name=frozenset(DECLARATION_FUNCTIONS), asname=_local_name))),
         binds=True),
    Form("pkgutil function import", "from pkgutil import extend_path",
         Node(ast.ImportFrom, module="pkgutil", level=0,
              names=Each(Node(ast.alias, name="extend_path", asname=_local_name))),
         binds=True),
    Form("pkg_resources function import", "from pkg_resources import declare_namespace",
         Node(ast.ImportFrom, module="pkg_resources", level=0,
              names=Each(Node(ast.alias, name="declare_namespace", asname=_local_name))),
         binds=True),
    Form("pkgutil declaration", "__path__ = __import__('pkgutil').extend_path(__path__, __name__)",
         Node(ast.Assign, targets=[_name("__path__")], value=_pkgutil_call()), style=Style.PKGUTIL),
    # An annotation is evaluated at import (before PEP 649): only ones that run nothing.
    Form("annotated pkgutil declaration", "__path__: list = __import__('pkgutil').extend_path(__path__, __name__)",
         Node(ast.AnnAssign, target=_name("__path__"), simple=1, value=_pkgutil_call(),
              annotation=OneOf(
                  _name(ANNOTATION_NAMES),
                  Node(ast.Constant, value=_is_str),
                  Node(ast.Subscript, value=_name("list"), slice=_name("str")),
              )),
         style=Style.PKGUTIL),
    Form("pkg_resources declaration", "__import__('pkg_resources').declare_namespace(__name__)",
         Node(ast.Expr, value=Node(ast.Call, func=Function("pkg_resources", "declare_namespace"),
                                   args=_DECLARE_CALL_ARGS[Style.PKG_RESOURCES])),
         style=Style.PKG_RESOURCES),
    Form("fallback", "try: <declaration> except ImportError: <declaration or pass>",
         Node(ast.Try,
              body=Block(_DECLARING_BLOCK),
              handlers=Each(Node(
                  ast.ExceptHandler, name=None,
                  type=OneOf(
                      _name(FALLBACK_EXCEPTIONS),
                      Node(ast.Tuple, elts=Each(_name(FALLBACK_EXCEPTIONS))),
                  ),
                  body=OneOf(
                      Block(("pass",)),
                      Block(_DECLARING_BLOCK),
                  ),
              ))),
         style=Style.PKG_RESOURCES),
)
FORMS_BY_NAME = {form.name: form for form in FORMS}
# Top level: every form. Blocks name their own subsets.
TOP_LEVEL = tuple(form.name for form in FORMS)


# -- matching --------------------------------------------------------------------------------


class Match(Slotted):
    __slots__ = ("form", "styles")

    form: Form
    styles: set[Style]  # the declaration styles the statement makes (a fallback: both)

    def __init__(self, form: Form, styles: set[Style]) -> None:
        self.form = form
        self.styles = styles


def match_statement(stmt: ast.stmt, scope: Scope, allowed: Sequence[str] = TOP_LEVEL) -> Match | None:
    """The whitelisted form ``stmt`` is, binding its imports in ``scope``; None when it is none."""
    for name in allowed:
        form = FORMS_BY_NAME[name]
        trial = _Trial(scope)
        if trial.matches(form.pattern, stmt):
            trial.commit()
            if form.binds:
                scope.bind(stmt)
            styles = trial.styles | ({form.style} if form.style and form.name != "fallback" else set())
            return Match(form, styles)
    return None


class _Trial:
    """One attempt to match a form: uses of imports and nested styles are kept only if it matches."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.used: set[int] = set()
        self.styles: set[Style] = set()

    def commit(self) -> None:
        self.scope.used |= self.used

    def matches(self, pattern: Any, value: Any) -> bool:
        if isinstance(pattern, Node):
            return self._node(pattern, value)
        if isinstance(pattern, Each):
            return isinstance(value, list) and bool(value) and all(self.matches(pattern.item, v) for v in value)
        if isinstance(pattern, list):
            return (isinstance(value, list) and len(value) == len(pattern)
                    and all(self.matches(p, v) for p, v in zip(pattern, value)))
        if isinstance(pattern, OneOf):
            return any(self._alternative(p, value) for p in pattern.patterns)
        if isinstance(pattern, frozenset):
            return isinstance(value, str) and value in pattern
        if isinstance(pattern, Function):
            return self._function(pattern, value)
        if isinstance(pattern, Block):
            return self._block(pattern, value)
        if callable(pattern):
            return bool(pattern(value, self.scope))
        return type(value) is type(pattern) and value == pattern

    def _alternative(self, pattern: Any, value: Any) -> bool:
        trial = _Trial(self.scope)
        if trial.matches(pattern, value):
            self.used |= trial.used
            self.styles |= trial.styles
            return True
        return False

    def _node(self, pattern: Node, value: Any) -> bool:
        if type(value) is not pattern.type:  # exactly: a subclass is another kind of node
            return False
        for field in value._fields:
            got = getattr(value, field, None)
            if field in pattern.fields:
                if not self.matches(pattern.fields[field], got):
                    return False
            elif field not in _HARMLESS_FIELDS and got not in (None, []):
                return False  # a field the form does not allow holds something
        return True

    def _function(self, pattern: Function, value: Any) -> bool:
        probe = Scope(self.scope)
        probe.used = set()  # collects only this reference's uses
        if type(value) is ast.Attribute and value.attr == pattern.name:
            found = probe.resolve(value.value) == (pattern.module, None)
        elif type(value) is ast.Name:
            found = probe.resolve(value) == (pattern.module, pattern.name)
        else:
            found = False
        if found:
            self.used |= probe.used
        return found

    def _block(self, pattern: Block, value: Any) -> bool:
        if not isinstance(value, list) or not value:
            return False
        inner = Scope(self.scope)
        for stmt in value:
            found = match_statement(stmt, inner, pattern.forms)
            if found is None:
                return False
            self.styles |= found.styles
        if inner.unused():
            return False
        self.used |= inner.used
        return True
