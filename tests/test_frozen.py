"""quick_init: the same instances as dataclass's own __init__, made without object.__setattr__."""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass, field
from typing import Any

import pytest

from callback.dialing import Turn
from callback.frozen import quick_init
from callback.survey_prompts import Prompt
from callback.surveys import SessionState
from callback.web.ivr import Step


def reference(cls: type) -> type:
    """``cls`` as plain ``@dataclass(frozen=True)`` makes it: the same fields, its own init."""
    fields = [
        (f.name, f.type, field(default=f.default, default_factory=f.default_factory))
        for f in dataclasses.fields(cls)
    ]
    return dataclasses.make_dataclass(cls.__name__, fields, frozen=True)


@pytest.mark.parametrize("cls", [SessionState, Prompt, Turn, Step])
def test_the_hot_classes_keep_dataclass_signature(cls: type) -> None:
    assert "FACTORY" in cls.__init__.__globals__  # the quick one is in place
    assert str(inspect.signature(cls)) == str(inspect.signature(reference(cls)))


@quick_init
@dataclass(frozen=True)
class Sample:
    name: str
    count: int = 3
    tags: list[str] = field(default_factory=list)
    note: str | None = None


def test_instances_are_those_dataclass_makes() -> None:
    Plain = reference(Sample)
    calls = [(("a",), {}), (("a", 5), {"note": "n"}), ((), {"name": "b", "tags": ["x"]}),
             (("c", 1, ["y"], "z"), {})]  # fmt: skip
    for args, kwargs in calls:
        quick, plain = Sample(*args, **kwargs), Plain(*args, **kwargs)
        assert vars(quick) == vars(plain)
        assert list(vars(quick)) == [f.name for f in dataclasses.fields(Sample)]
        assert quick == Sample(*args, **kwargs) and repr(quick) == repr(plain)
    with pytest.raises(dataclasses.FrozenInstanceError):
        Sample("a").count = 4  # type: ignore[misc]
    assert Sample("a").tags is not Sample("a").tags  # a fresh default from the factory each time
    assert hash(Sample("a", note="n", tags=())) == hash(Sample("a", 3, (), "n"))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("args", "kwargs"), [((), {}), (("a", 1, [], None, "extra"), {}), (("a",), {"nope": 1}),
                         (("a",), {"name": "b"})],
)  # fmt: skip
def test_wrong_arguments_are_refused_as_dataclass_refuses_them(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    with pytest.raises(TypeError) as quick:
        Sample(*args, **kwargs)
    with pytest.raises(TypeError):
        reference(Sample)(*args, **kwargs)
    assert "__init__()" in str(quick.value)


def test_what_it_cannot_do_exactly_is_refused_at_definition() -> None:
    def frozen(**options: Any) -> Any:
        return dataclass(frozen=True, **options)

    class Post:
        x: int = 0

        def __post_init__(self) -> None:
            pass

    class Late:
        x: int = field(default=0, init=False)

    class Keyword:
        x: int = field(default=0, kw_only=True)

    class Plain:
        x: int = 0

    class Unfrozen:
        x: int = 0

    class NotADataclass:
        x: int = 0

    for make in (lambda: frozen()(Post), lambda: frozen(slots=True)(Plain),
                 lambda: frozen()(Late), lambda: frozen()(Keyword),
                 lambda: dataclass(Unfrozen), lambda: NotADataclass):  # fmt: skip
        with pytest.raises(TypeError):
            quick_init(make())
