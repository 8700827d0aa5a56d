"""A wrapper that keeps decrypted values out of logs, reprs, f-strings and JSON.

Chosen over a ``str`` subclass: a subclass still leaks through ``json.dumps``, concatenation,
slicing and every ``str`` method, and passes ``isinstance(x, str)`` checks that would then copy
the value into plain strings. A wrapper fails closed (``json.dumps`` raises, ``+`` is a
TypeError) and the one way out, :meth:`Secret.reveal`, is easy to grep for.
"""

from __future__ import annotations

from typing import Any, Generic, NoReturn, TypeVar

from ..bundleformat import MASK  # one mask for every secret shown

T = TypeVar("T")


class Secret(Generic[T]):
    """A decrypted value whose text forms are masked; call :meth:`reveal` to use it."""

    __slots__ = ("_value",)
    _value: T

    def __init__(self, value: T) -> None:
        object.__setattr__(self, "_value", value)

    def reveal(self) -> T:
        """The clear value: the only way to get it."""
        return self._value

    def __repr__(self) -> str:
        return MASK

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and bool(self._value == other._value)

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __bool__(self) -> bool:
        return bool(self._value)

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError("Secret is immutable")

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret cannot be pickled")


def reveal(value: object) -> Any:
    """``value`` with every Secret inside it (dicts and lists too) unwrapped.

    The result is left loose: callers index the clear tree by the paths they know are there.
    """
    if isinstance(value, Secret):
        return value.reveal()
    if isinstance(value, dict):
        return {k: reveal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [reveal(v) for v in value]
    return value
