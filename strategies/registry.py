"""The lazy strategy registry: CLI name -> the StrategySpec of its catalogue entry's target.

Importing this module imports nothing heavy (no torch, faiss or trl), so the TUI and the advisor
can list candidates instantly; a strategy's module is imported only when it is asked for.
`peft:<type>` resolves to the generic PEFT strategy for any peft method by its type name, and
`<trainable>+rag` (`lora+rag`) to that candidate fine-tuned with retrieved passages (FT + RAG).
"""

from __future__ import annotations

import difflib
import importlib
from functools import lru_cache
from typing import Any, Iterable

from strategies import catalogue
from strategies.base import TASK_KINDS, StrategyError, StrategySpec

PEFT_PREFIX = catalogue.PEFT_PREFIX
RAG_SUFFIX = catalogue.RAG_SUFFIX


def register(name: str, target: str, family: str, *, tasks: Iterable[str] = TASK_KINDS,
             trainable: bool = False, **entry_fields: Any) -> None:
    """Add an entry at run time (plugins, tests). The name is checked like a built-in one;
    `entry_fields` are the other catalogue.Entry fields (profile, prior, traits, shards)."""
    if name in catalogue.names():
        raise ValueError(f"strategy {name!r} is already registered")
    entry_fields.setdefault("shards", "ddp" if trainable else None)
    catalogue.add(catalogue.Entry(name, target, family, frozenset(tasks), trainable=trainable,
                                  **entry_fields))
    get.cache_clear()


def names() -> list[str]:
    return catalogue.names()


def family_of(name: str) -> str:
    entry = catalogue.entry(name)
    if entry is None:
        raise StrategyError(unknown_message(name))
    return entry.family


def unknown_message(name: str) -> str:
    close = difflib.get_close_matches(name, names(), n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    return (f"unknown strategy {name!r}.{hint} Known: {', '.join(names())}, peft:<type>, "
            f"<trainable>{RAG_SUFFIX}.")


def target_of(name: str) -> str | None:
    """The "module:attribute" of a registered name (None for `peft:<type>`): a spawned child
    process imports it directly, so entries registered at run time (plugins, tests) work too."""
    entry = catalogue.entry(name)
    if entry is None:
        raise StrategyError(unknown_message(name))
    return entry.target


def is_known(name: str) -> bool:
    return catalogue.is_known(name)


@lru_cache(maxsize=None)
def get(name: str) -> StrategySpec:
    """The StrategySpec for a CLI name; imports its module on first use."""
    base = catalogue.rag_base(name)
    if base is not None:
        from strategies import ft_rag

        return ft_rag.spec_for(get(base))
    if catalogue.is_peft_type(name):
        from strategies import peft_generic

        return peft_generic.spec_for(name[len(PEFT_PREFIX):])
    entry = catalogue.entry(name)
    if entry is None:
        raise StrategyError(unknown_message(name))
    module_name, attr = entry.target.split(":")
    spec = getattr(importlib.import_module(module_name), attr)
    if spec.name != name:
        raise ValueError(f"registry entry {name!r} points to a spec named {spec.name!r}")
    return spec


def resolve(names_csv: str, task: str | None = None) -> list[str]:
    """Parse `--strategies a,b|all` into names; "all" means every one supporting `task`."""
    wanted = [n.strip() for n in names_csv.split(",") if n.strip()]
    if wanted == ["all"]:
        return [n for n in names() if task is None or task in get(n).tasks]
    for name in wanted:
        if not is_known(name):
            raise StrategyError(unknown_message(name))
    return wanted
