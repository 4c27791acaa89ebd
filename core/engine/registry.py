"""One registry per family (activations, initializers, losses, optimizers, schedules, datasets).

A registry maps the name used in the experiment JSON to a small class. Names read from a
file are only ever looked up here, never imported, so a spec cannot make the engine load
code. Registering a name twice is a programming error and raises; ``unregister`` exists
for tests that add a throwaway entry and must leave the registry as they found it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """A named mapping from spec names to classes, in registration order."""

    def __init__(self, family: str) -> None:
        self.family = family
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Class decorator: ``@ACTIVATIONS.register("elu")``."""

        def decorator(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.family} {name!r} is registered twice")
            self._entries[name] = obj
            try:
                obj.name = name  # type: ignore[attr-defined]
            except (AttributeError, TypeError):
                pass
            return obj

        return decorator

    def unregister(self, name: str) -> T:
        """Remove a registered name and return its class (for tests: a throwaway entry is
        registered, exercised and removed). An unknown name raises ``KeyError``."""
        if name not in self._entries:
            raise KeyError(f"unknown {self.family} {name!r}; allowed: {', '.join(self._entries)}")
        return self._entries.pop(name)

    def get(self, name: str) -> T:
        """Look a name up; an unknown name raises ``KeyError`` listing the allowed ones."""
        if not isinstance(name, str) or name not in self._entries:
            raise KeyError(f"unknown {self.family} {name!r}; allowed: {', '.join(self._entries)}")
        return self._entries[name]

    def names(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.family!r}, {self.names()})"
