"""String-keyed registries: an unknown name fails with the list of known names."""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable, Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(obj: T) -> T:
            if name in self._items:
                raise KeyError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            return obj

        return add

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise KeyError(f"unknown {self.kind} {name!r} (known: {', '.join(self.names())})") from None

    def names(self) -> list[str]:
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items


@dataclass(frozen=True)
class Method:
    """A method's registry line: the module that defines `def <name>(model, ctx) -> model`
    (imported when the method first runs, so configs validate without torch) and the
    method-specific config fields it uses (the others are set to None, so that grids over them
    do not repeat trials of methods that ignore them)."""

    module: str
    params: tuple[str, ...] = ()

    def load(self, name: str) -> Callable:
        return getattr(importlib.import_module(self.module), name)


def method_registry(kind: str, table: dict[str, Method]) -> Registry[Method]:
    reg: Registry[Method] = Registry(kind)
    for name, entry in table.items():
        reg.register(name)(entry)
    return reg
