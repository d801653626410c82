"""One registry type for everything pixloop finds by name: critics, backends and planners.

A name resolves, in this order, to a factory registered at run time (tests, notebooks), a built-in
(an import path, loaded on first use so optional dependencies cost nothing until then), or an entry
point in the registry's group (`pixloop.critics`, `pixloop.backends`, `pixloop.planners`) that a
third-party distribution declares, so a plugin needs no edit to pixloop. Instances are cached by a
key the caller chooses (critics: their name; backends: name and settings), so a model loads once
per process and is shared across runs and threads.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Hashable, Iterator, Mapping
from contextlib import contextmanager
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Generic, Literal, TypeVar

from agent.models.errors import UnknownNameError

T = TypeVar("T")
Origin = Literal["registered", "builtin", "plugin"]


class Registry(Generic[T]):
    """Names -> factories of `T`, with a per-key instance cache."""

    def __init__(self, kind: str, *, builtins: Mapping[str, str], group: str | None,
                 error: type[UnknownNameError] = UnknownNameError,
                 unavailable_hint: Callable[[str], str] | None = None):
        self.kind = kind
        self.group = group
        self.error = error
        self._builtins = dict(builtins)
        self._hint = unavailable_hint
        self._registered: dict[str, Callable[..., T]] = {}
        self._plugins: dict[str, EntryPoint] | None = None
        self._loaded: dict[str, Any] = {}
        self._instances: dict[Hashable, T] = {}
        self._lock = threading.RLock()

    # --- what is known ---------------------------------------------------------------------

    def plugins(self) -> dict[str, EntryPoint]:
        """Entry points in this registry's group, read once per process (installing a plugin needs a new one)."""
        if self._plugins is None:
            found = entry_points(group=self.group) if self.group else ()
            self._plugins = {ep.name: ep for ep in found}
        return self._plugins

    def names(self) -> list[str]:
        return sorted({*self._registered, *self._builtins, *self.plugins()})

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.names()

    def origin(self, name: str) -> Origin:
        """Where a name comes from: registered at run time, built in, or a plugin's entry point."""
        if name in self._registered:
            return "registered"
        if name in self._builtins:
            return "builtin"
        if name in self.plugins():
            return "plugin"
        raise self._unknown(name)

    def provider(self, name: str) -> str:
        """Who provides a name: 'pixloop', 'registered at run time', or the plugin's distribution."""
        origin = self.origin(name)
        if origin != "plugin":
            return "pixloop" if origin == "builtin" else "registered at run time"
        ep = self.plugins()[name]
        dist = getattr(ep, "dist", None)
        return f"{dist.name} {dist.version}" if dist is not None else ep.value

    # --- resolving ---------------------------------------------------------------------------

    def factory(self, name: str) -> Any:
        """The class or factory a name resolves to (imported on first use)."""
        with self._lock:
            if name in self._registered:
                return self._registered[name]
            if name in self._loaded:
                return self._loaded[name]
            if name in self._builtins:
                target = self._builtins[name]
                loaded = self._import(name, lambda: _import_path(target))
            elif name in self.plugins():
                ep = self.plugins()[name]
                loaded = self._import(name, ep.load, plugin=ep.value)
            else:
                raise self._unknown(name)
            self._loaded[name] = loaded
            return loaded

    def instance(self, name: str, make: Callable[[Any], T] | None = None, key: Hashable | None = None) -> T:
        """The shared instance for a key (default: the name), made once with `make(factory)` (default: call it)."""
        cache_key = (name, key)
        with self._lock:
            if cache_key not in self._instances:
                factory = self.factory(name)
                self._instances[cache_key] = make(factory) if make is not None else factory()
            return self._instances[cache_key]

    # --- run-time registration -----------------------------------------------------------------

    def register(self, name: str, factory: Callable[..., T]) -> None:
        """Register (or replace, also a built-in) a factory under a name for this process."""
        with self._lock:
            self._registered[name] = factory
            self._forget(name)

    def unregister(self, name: str) -> None:
        """Undo `register`; a built-in or plugin of that name is visible again."""
        with self._lock:
            self._registered.pop(name, None)
            self._forget(name)

    @contextmanager
    def registered(self, name: str, factory: Callable[..., T]) -> Iterator[None]:
        """`register` for the duration of a with-block, then restore what was there (tests, experiments)."""
        with self._lock:
            previous = self._registered.get(name)
        self.register(name, factory)
        try:
            yield
        finally:
            if previous is None:
                self.unregister(name)
            else:
                self.register(name, previous)

    def _forget(self, name: str) -> None:
        self._loaded.pop(name, None)
        for k in [k for k in self._instances if isinstance(k, tuple) and k[0] == name]:
            del self._instances[k]

    # --- errors --------------------------------------------------------------------------------

    def _unknown(self, name: str) -> UnknownNameError:
        return self.error(f"unknown {self.kind} {name!r}; known {self.kind}s: {', '.join(self.names())}")

    def _import(self, name: str, load: Callable[[], Any], plugin: str | None = None) -> Any:
        try:
            return load()
        except ImportError as e:
            hint = f" ({self._hint(name)})" if self._hint is not None and plugin is None else ""
            where = f" (plugin {plugin})" if plugin else ""
            raise self.error(f"{self.kind} {name!r}{where} is not available here: {e}{hint}") from None


def _import_path(target: str) -> Any:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


__all__ = ["Origin", "Registry"]
