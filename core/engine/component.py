"""The small-class convention every registered component follows.

A component declares its hyperparameters as keyword arguments with defaults in
``__init__`` (validating them there and storing each under the same attribute name).
From that one signature come ``parameters()`` (the allowed names and defaults, used by the
spec validator and the GUI), ``get_config()`` / ``from_config()`` with JSON-only values, and a
``__repr__`` that reads like the constructor call. Arguments without a default (an
optimizer's parameter list, a schedule's initial learning rate) are context, not config.

Each hyperparameter is documented on the class that takes it, as Keras documents its
arguments: ``hyperparameters`` maps its name to a :class:`Hyperparameter` (a short label, one
line of help, the values allowed). A subclass documents only what it adds or means
differently; ``hyperparameter(name)`` looks the name up from the class towards its bases.
The GUI's tooltips and labels, the labs and the docs read these; nothing keeps a second copy.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from .validation import check_params


@dataclass(frozen=True)
class Hyperparameter:
    """How one hyperparameter is explained: ``label`` (a short caption, e.g. ``"momentum β"``),
    ``help`` (one line: what it does and what is usual), ``range`` (the values the class
    accepts, as its ``__init__`` checks them, e.g. ``"0 ≤ β < 1"``) and ``symbol`` (the
    book's letter, when it has one, e.g. ``"β"``)."""

    label: str
    help: str
    range: str
    symbol: str = ""


class Component:
    name: ClassVar[str] = ""
    family: ClassVar[str] = "component"
    #: Help for the hyperparameters this class adds or redefines (see ``hyperparameter``).
    hyperparameters: ClassVar[Mapping[str, Hyperparameter]] = {}

    @classmethod
    def hyperparameter(cls, name: str) -> Hyperparameter | None:
        """The help for ``name``: from this class's ``hyperparameters``, else the nearest base's
        that documents it; ``None`` if none does."""
        for klass in cls.__mro__:
            documented = klass.__dict__.get("hyperparameters")
            if documented is not None and name in documented:
                return documented[name]
        return None

    @classmethod
    def parameters(cls) -> dict[str, Any]:
        """Hyperparameter names and their defaults, in signature order (a fresh dict)."""
        # Read from the signature once per class: validating one GUI edit of a deep network asks
        # thousands of times, and inspect.signature is slow. Kept in the class's own __dict__,
        # so a subclass never sees its parent's entry.
        cached = cls.__dict__.get("_parameters_of_init")
        if cached is None or cached[0] is not cls.__init__:
            sig = inspect.signature(cls.__init__)
            defaults = {
                p.name: p.default
                for p in sig.parameters.values()
                if p.name != "self"
                and p.default is not inspect.Parameter.empty
                and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            }
            cached = (cls.__init__, defaults)
            cls._parameters_of_init = cached  # type: ignore[attr-defined]
        return dict(cached[1])

    def get_config(self) -> dict[str, Any]:
        """``{"name": ..., <every hyperparameter>: value}`` with plain JSON values."""
        config: dict[str, Any] = {"name": self.name}
        for key in self.parameters():
            value = getattr(self, key)
            if isinstance(value, tuple):
                value = list(value)
            config[key] = value
        return config

    @classmethod
    def from_config(cls, config: Mapping[str, Any], *args: Any) -> Component:
        params = {k: v for k, v in config.items() if k != "name"}
        check_params(cls.family, cls.name, params, cls.parameters())
        return cls(*args, **params)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.parameters())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.get_config() == other.get_config()  # type: ignore[union-attr]

    __hash__ = None  # type: ignore[assignment]
