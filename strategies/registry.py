"""The lazy strategy registry: CLI name -> "module:attribute" of a StrategySpec.

Importing this module imports nothing heavy (no torch, faiss or trl), so the TUI and the advisor
can list candidates instantly; a strategy's module is imported only when it is asked for.
`peft:<type>` resolves to the generic PEFT strategy for any peft method by its type name, and
`<trainable>+rag` (`lora+rag`) to that candidate fine-tuned with retrieved passages (FT + RAG).
"""

from __future__ import annotations

import difflib
import importlib
from functools import lru_cache

from strategies.base import StrategyError, StrategySpec

# One line per candidate, grouped by family; the order is the display order.
_ENTRIES: dict[str, str] = {
    # baseline
    "majority": "strategies.majority:SPEC",
    # prompting
    "zero-shot": "strategies.zero_shot:SPEC",
    "few-shot": "strategies.few_shot:SPEC",
    # rag
    "rag": "strategies.rag:SPEC",
    "knn": "strategies.knn:SPEC",
    # transfer
    "transfer": "strategies.transfer:SPEC",
    "encoder-ft": "strategies.encoder_ft:SPEC",
    "setfit": "strategies.setfit:SPEC",
    # fine-tuning / peft (issue 4) — added as their modules land
    "full": "strategies.full:SPEC",
    "freeze": "strategies.freeze:SPEC",
    "lora": "strategies.lora:SPEC",
    "qlora": "strategies.qlora:SPEC",
    "dora": "strategies.dora:SPEC",
    "prompt-tuning": "strategies.prompt_tuning:SPEC",
    "prefix-tuning": "strategies.prefix_tuning:SPEC",
    "ia3": "strategies.ia3:SPEC",
    "loha": "strategies.loha:SPEC",
    "adalora": "strategies.adalora:SPEC",
    # preference (issue 7) — added as their modules land
    "sft-chosen": "strategies.sft_chosen:SPEC",
    "dpo": "strategies.dpo:SPEC",
    "reward-model": "strategies.reward_model:SPEC",
    "rlhf": "strategies.rlhf:SPEC",
}

# Families of the names above, without importing their modules (for the advisor and the TUI).
_FAMILIES: dict[str, str] = {
    "majority": "baseline",
    "zero-shot": "prompting",
    "few-shot": "prompting",
    "rag": "rag",
    "knn": "rag",
    "transfer": "transfer",
    "encoder-ft": "transfer",
    "setfit": "transfer",
    # fine-tuning / peft
    "full": "fine-tuning",
    "freeze": "fine-tuning",
    "lora": "peft",
    "qlora": "peft",
    "dora": "peft",
    "prompt-tuning": "peft",
    "prefix-tuning": "peft",
    "ia3": "peft",
    "loha": "peft",
    "adalora": "peft",
    # preference
    "sft-chosen": "preference",
    "dpo": "preference",
    "reward-model": "preference",
    "rlhf": "preference",
}

PEFT_PREFIX = "peft:"
RAG_SUFFIX = "+rag"


def _rag_base(name: str) -> str | None:
    """`lora` for `lora+rag` (None for any other name)."""
    if name.endswith(RAG_SUFFIX) and len(name) > len(RAG_SUFFIX):
        return name[: -len(RAG_SUFFIX)]
    return None


def register(name: str, target: str, family: str) -> None:
    """Add an entry at run time (plugins, tests). The name is checked like a built-in one."""
    if name in _ENTRIES:
        raise ValueError(f"strategy {name!r} is already registered")
    if name != name.lower():
        raise ValueError(f"strategy name {name!r} must be lowercase")
    _ENTRIES[name] = target
    _FAMILIES[name] = family
    get.cache_clear()


def names() -> list[str]:
    return list(_ENTRIES)


def family_of(name: str) -> str:
    if _rag_base(name):
        return family_of(_rag_base(name))
    if name.startswith(PEFT_PREFIX):
        return "peft"
    if name not in _FAMILIES:
        raise StrategyError(unknown_message(name))
    return _FAMILIES[name]


def unknown_message(name: str) -> str:
    close = difflib.get_close_matches(name, names(), n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    return (f"unknown strategy {name!r}.{hint} Known: {', '.join(names())}, peft:<type>, "
            f"<trainable>{RAG_SUFFIX}.")


def target_of(name: str) -> str | None:
    """The "module:attribute" of a registered name (None for `peft:<type>`): a spawned child
    process imports it directly, so entries registered at run time (plugins, tests) work too."""
    if name.startswith(PEFT_PREFIX) or _rag_base(name):
        return None
    if name not in _ENTRIES:
        raise StrategyError(unknown_message(name))
    return _ENTRIES[name]


def is_known(name: str) -> bool:
    if _rag_base(name):
        return is_known(_rag_base(name))
    return name in _ENTRIES or (name.startswith(PEFT_PREFIX) and len(name) > len(PEFT_PREFIX))


@lru_cache(maxsize=None)
def get(name: str) -> StrategySpec:
    """The StrategySpec for a CLI name; imports its module on first use."""
    if _rag_base(name):
        return importlib.import_module("strategies.ft_rag").spec_for(_rag_base(name))
    if name.startswith(PEFT_PREFIX):
        module = importlib.import_module("strategies.peft_generic")
        return module.spec_for(name[len(PEFT_PREFIX):])
    if name not in _ENTRIES:
        raise StrategyError(unknown_message(name))
    module_name, attr = _ENTRIES[name].split(":")
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
