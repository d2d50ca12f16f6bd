"""Name -> object registries for rewards, advantage estimators, transforms, tasks, group
filters and policy losses.

Built-ins register with a decorator (`@ADVANTAGES.register("grpo")`) in modules the
registry imports on first use. Plugins register through entry points
(`[project.entry-points."rewardkit.rewards"]`) and are imported only when their name is
looked up, so `rewardkit list` can show everything without importing plugin code.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any


class RegistryError(LookupError):
    """A name could not be resolved: unknown, ambiguous or failing to import."""


@dataclass(frozen=True)
class Entry:
    name: str
    kind: str
    distribution: str
    target: str  # "module:attr" — what would be imported


class Registry:
    def __init__(self, kind: str, group: str, builtin_modules: tuple[str, ...] = ()):
        self.kind = kind
        self.group = group
        self.builtin_modules = builtin_modules
        self._builtins: dict[str, Any] = {}
        self._loaded: dict[str, Any] = {}
        self._builtins_imported = False

    # -- registration -------------------------------------------------------------------
    def register(self, name: str, obj: Any = None):
        """Register a built-in under `name`; usable as a decorator or a plain call."""

        def add(target: Any) -> Any:
            if name in self._builtins and self._builtins[name] is not target:
                raise RegistryError(f"{self.kind} {name!r} is registered twice in rewardkit")
            self._builtins[name] = target
            return target

        return add if obj is None else add(obj)

    # -- discovery ----------------------------------------------------------------------
    def _import_builtins(self) -> None:
        if not self._builtins_imported:
            self._builtins_imported = True
            for module in self.builtin_modules:
                importlib.import_module(module)

    def _entry_points(self) -> dict[str, list[EntryPoint]]:
        found: dict[str, list[EntryPoint]] = {}
        for ep in entry_points(group=self.group):
            found.setdefault(ep.name, []).append(ep)
        return found

    def entries(self) -> list[Entry]:
        """Everything installed, built-ins and plugins, without importing plugins."""
        self._import_builtins()
        rows = [Entry(n, self.kind, "rewardkit", _target(o)) for n, o in self._builtins.items()]
        for name, eps in self._entry_points().items():
            for ep in eps:
                dist = ep.dist.name if ep.dist is not None else "?"
                if name in self._builtins and dist == "rewardkit":
                    continue  # core's own entry point for a built-in
                rows.append(Entry(name, self.kind, dist, ep.value))
        return sorted(rows, key=lambda e: e.name)

    def names(self) -> list[str]:
        return sorted({e.name for e in self.entries()})

    # -- lookup -------------------------------------------------------------------------
    def get(self, name: str) -> Any:
        self._import_builtins()
        if name in self._loaded:
            return self._loaded[name]
        eps = self._entry_points().get(name, [])
        if name in self._builtins:
            foreign = [ep for ep in eps if ep.dist is not None and ep.dist.name != "rewardkit"]
            if foreign:
                raise RegistryError(
                    f"{self.kind} {name!r} is defined both by rewardkit and by "
                    f"{foreign[0].dist.name}; rename the plugin's entry point"
                )
            return self._builtins[name]
        if not eps:
            known = self.names()
            close = difflib.get_close_matches(name, known, n=3)
            hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
            raise RegistryError(
                f"unknown {self.kind} {name!r}.{hint} Installed: {', '.join(known) or 'none'}. "
                f"Plugins register under the entry-point group {self.group!r}."
            )
        dists = sorted({ep.dist.name if ep.dist else "?" for ep in eps})
        if len(eps) > 1:
            raise RegistryError(
                f"{self.kind} {name!r} is provided by several distributions: {', '.join(dists)}; "
                f"uninstall one of them"
            )
        try:
            obj = eps[0].load()
        except Exception as exc:  # noqa: BLE001 - re-raised with context
            raise RegistryError(
                f"{self.kind} {name!r} from distribution {dists[0]} ({eps[0].value}) failed to "
                f"import: {type(exc).__name__}: {exc}"
            ) from exc
        self._loaded[name] = obj
        return obj

    def __contains__(self, name: str) -> bool:
        return name in self.names()


def _target(obj: Any) -> str:
    module = getattr(obj, "__module__", None) or type(obj).__module__
    name = getattr(obj, "__qualname__", None) or type(obj).__qualname__
    return f"{module}:{name}"


REWARDS = Registry("reward", "rewardkit.rewards", ("rewardkit.rewards.builtin",))
ADVANTAGES = Registry("advantage", "rewardkit.advantages", ("rewardkit.advantages",))
TRANSFORMS = Registry("transform", "rewardkit.transforms", ("rewardkit.rewards.transforms",))
TASKS = Registry("task", "rewardkit.tasks", ("rewardkit.tasks",))
GROUP_FILTERS = Registry("group_filter", "rewardkit.group_filters", ("rewardkit.filters",))
LOSSES = Registry("loss", "rewardkit.losses", ("rewardkit.trainer.loss",))

ALL_REGISTRIES = (REWARDS, ADVANTAGES, TRANSFORMS, TASKS, GROUP_FILTERS, LOSSES)
