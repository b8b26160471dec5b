"""Plain value classes for the modules every command imports, instead of :mod:`dataclasses`.

``dataclasses`` imports :mod:`inspect` (with ast, dis and tokenize), about 7.5 ms, and each
``@dataclass`` execs generated code when its module is imported, about 0.3 ms a class: on
``ns-strip ext`` that was a third of the start-up paid by every command and every package
build. A class here lists its fields as its ``__slots__`` and writes its own ``__init__``; the
base gives it what the dataclass gave: comparison field by field (with an object of the same
class only), a ``repr`` in the dataclass's form, pickling (``ext --jobs`` sends results from
forked processes) and :meth:`Slotted.replace` for :func:`dataclasses.replace`.

Public API: :class:`Slotted` (mutable, unhashable, like ``@dataclass``),
:class:`FrozenSlotted` (hashable, refuses assignment, like ``@dataclass(frozen=True)``).
"""

from __future__ import annotations

import operator

# typing.TYPE_CHECKING, without importing typing (about 2.5 ms of start-up): type checkers take
# any name TYPE_CHECKING as true. Modules on every command's path do the same.
TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any, TypeVar

    SlottedT = TypeVar("SlottedT", bound="Slotted")

# A frozen class's __init__ sets its fields through this (its own __setattr__ refuses).
set_field = object.__setattr__


class Slotted:
    """Fields are the subclass's ``__slots__``, in order; its ``__init__`` takes them in that
    order (pickling and :meth:`replace` call it so)."""

    __slots__ = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # The fields as a tuple, read at C speed: pickling a forked process's results, comparing
        # and hashing go through it.
        names = cls.__slots__
        getter = operator.attrgetter(*names) if names else None
        if len(names) == 1:
            cls._values_of = staticmethod(lambda obj: (getter(obj),))  # type: ignore[misc, operator]
        else:
            cls._values_of = staticmethod(getter or (lambda obj: ()))  # type: ignore[misc]

    def field_values(self) -> tuple[Any, ...]:
        return self._values_of(self)  # type: ignore[attr-defined]

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            return self._values_of(self) == other._values_of(other)  # type: ignore[attr-defined]
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, as a dataclass with eq and not frozen

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{self.__class__.__qualname__}({fields})"

    def __reduce__(self) -> tuple[Any, ...]:
        return self.__class__, self._values_of(self)  # type: ignore[attr-defined]

    def replace(self: SlottedT, **changes: Any) -> SlottedT:
        """A copy with ``changes`` (field name -> value), as :func:`dataclasses.replace`."""
        values = {name: getattr(self, name) for name in self.__slots__}
        values.update(changes)
        return self.__class__(**values)


class FrozenSlotted(Slotted):
    """A :class:`Slotted` whose fields are set once, by ``__init__`` through :data:`set_field`."""

    __slots__ = ()

    def __hash__(self) -> int:
        return hash(self._values_of(self))  # type: ignore[attr-defined]

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r} of a frozen {self.__class__.__qualname__}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r} of a frozen {self.__class__.__qualname__}")
