"""The component convention: every registered class documents each hyperparameter it takes (the
GUI's labels and tooltips, the labs and the docs read that help and keep no copy), and the
registry refuses a name twice but lets a test remove the entry it added."""

from __future__ import annotations

from typing import ClassVar

import pytest

from core.engine.activations import ACTIVATIONS
from core.engine.component import Component, Hyperparameter
from core.engine.initializers import INITIALIZERS
from core.engine.losses import LOSSES
from core.engine.optimizers import OPTIMIZERS
from core.engine.registry import Registry
from core.engine.schedules import SCHEDULES

FAMILIES = {"activation": ACTIVATIONS, "initializer": INITIALIZERS, "loss": LOSSES, "optimizer": OPTIMIZERS,
            "schedule": SCHEDULES}


def assert_documented(cls: type[Component]) -> None:
    """Every hyperparameter of ``cls`` has a label, one line of help and its range, and the class
    documents no name it does not take."""
    for key in cls.parameters():
        documented = cls.hyperparameter(key)
        assert documented is not None, f"{cls.__name__}: no help for {key!r}; add it to its hyperparameters"
        for part in ("label", "help", "range"):
            text = getattr(documented, part)
            assert isinstance(text, str) and text.strip() and "\n" not in text, (cls.__name__, key, part)
    stale = set(cls.__dict__.get("hyperparameters", {})) - set(cls.parameters())
    assert not stale, f"{cls.__name__} documents hyperparameters it does not take: {sorted(stale)}"


@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_registered_entry_documents_its_hyperparameters(family):
    registry = FAMILIES[family]
    assert len(registry) > 0
    for name in registry.names():
        assert_documented(registry.get(name))


def test_a_hyperparameter_without_help_is_caught():
    class Undocumented(Component):
        def __init__(self, rate: float = 0.1) -> None:
            self.rate = rate

    with pytest.raises(AssertionError, match="no help for 'rate'"):
        assert_documented(Undocumented)


def test_help_is_looked_up_from_the_class_towards_its_bases():
    base_help = Hyperparameter("rate", "the base's", "> 0")
    own_help = Hyperparameter("rate", "the subclass's", "> 0")
    extra = Hyperparameter("extra", "only the subclass takes it", "any")

    class Base(Component):
        hyperparameters: ClassVar = {"rate": base_help}

    class Inherits(Base):
        hyperparameters: ClassVar = {"extra": extra}

    class Redefines(Inherits):
        hyperparameters: ClassVar = {"rate": own_help}

    assert Inherits.hyperparameter("rate") is base_help and Inherits.hyperparameter("extra") is extra
    assert Redefines.hyperparameter("rate") is own_help and Redefines.hyperparameter("extra") is extra
    assert Base.hyperparameter("extra") is None and Redefines.hyperparameter("nope") is None


def test_shared_help_means_the_same_everywhere():
    """AdamW documents only its decay; β1, β2, ε and η come from Adam and the base class."""
    adam, adamw = OPTIMIZERS.get("adam"), OPTIMIZERS.get("adamw")
    assert set(adamw.__dict__["hyperparameters"]) == {"weight_decay"}
    for key in ("learning_rate", "beta_1", "beta_2", "epsilon"):
        assert adamw.hyperparameter(key) is adam.hyperparameter(key)
    assert OPTIMIZERS.get("momentum").hyperparameter("momentum").symbol == "β"


def test_registry_refuses_a_name_twice_and_unregisters_for_tests():
    registry: Registry[type] = Registry("thing")

    @registry.register("a")
    class A:
        pass

    with pytest.raises(ValueError, match="'a' is registered twice"):
        registry.register("a")(type("B", (), {}))
    assert registry.unregister("a") is A
    assert "a" not in registry and registry.names() == []
    with pytest.raises(KeyError, match="unknown thing 'a'"):
        registry.unregister("a")
    assert registry.register("a")(A) is A  # free again once removed
