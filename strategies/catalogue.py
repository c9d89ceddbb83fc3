"""The one catalogue of candidates: every fact about a strategy that is read without importing it.

    from strategies import catalogue
    entry = catalogue.entry("qlora")   # Entry(name, target, family, tasks, trainable, ...)
    catalogue.names()                  # display order
    catalogue.with_trait("adapter")    # ("lora", "qlora", ...)

A strategy's code and its config live in its module (`SPEC`); this file says, in one line per
candidate, what the registry, the advisor's rules, the estimator, the multi-GPU planner and the
sweeps need to know about it beforehand. Every other table is derived from this one, and
tests/test_catalogue.py checks each entry against its module's `SPEC`. Adding a strategy = its
module + one `Entry` below. Stdlib only, so the advisor and the TUI list candidates instantly.

`peft:<type>` (any peft method by its type name) and `<trainable>+rag` (that candidate
fine-tuned with retrieved passages) are not listed: `entry()` derives them, the latter from
its base candidate.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from strategies.profile import Profile

PEFT_PREFIX = "peft:"
RAG_SUFFIX = "+rag"

# What the advisor's rules read instead of lists of names.
TRAITS = frozenset({
    "trains_llm",  # adapts the LLM's weights (or adapters on it)
    "adapter",  # a small trained part beside a frozen base: cheap to retrain, store and swap
    "prompting",  # the frozen LLM, told what to do in its prompt
    "retrieval",  # looks up passages or neighbours at prediction time
    "baseline",  # always run beside the candidates, for comparison
    "resumable",  # its training resumes a Trainer checkpoint (a race's next rung continues it)
})
SHARDING = ("fsdp", "ddp")  # full-parameter methods shard; adapters replicate (bench.distributed)
LM_TASKS = frozenset({"classification", "generation", "qa"})
CLASSIFICATION = frozenset({"classification"})
PREFERENCE = frozenset({"preference"})
# Task kinds where retrieval in front of a trained LM (`<trainable>+rag`) makes sense.
RAG_TASKS = frozenset({"generation", "qa"})


@dataclass(frozen=True)
class Entry:
    """One candidate. `target` is the "module:attribute" of its StrategySpec (None for the
    derived `peft:<type>` and `+rag` names). `shards`: how it spreads over several GPUs,
    "fsdp" | "ddp", or None for a method that trains nothing. `profile`: how the estimator
    counts its memory and time (None: no estimate, e.g. a plugin that gave none).
    `prior`: the advisor's starting score, 0-100: the consensus "prompt first, then PEFT,
    then heavier methods" before anything is known about the case."""

    name: str
    target: str | None
    family: str
    tasks: frozenset[str]
    trainable: bool = False
    shards: str | None = None
    profile: Profile | None = None
    prior: float = 40.0
    traits: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.name != self.name.lower():
            raise ValueError(f"strategy name {self.name!r} must be lowercase")
        if self.shards not in (None, *SHARDING):
            raise ValueError(f"{self.name}: shards must be one of {SHARDING} or None")
        if self.shards is not None and not self.trainable:
            raise ValueError(f"{self.name}: only a trainable candidate shards (fsdp or ddp)")
        unknown = set(self.traits) - TRAITS
        if unknown:
            raise ValueError(f"{self.name}: unknown traits {sorted(unknown)}")


def _e(name: str, module: str, family: str, tasks: frozenset[str], profile: Profile,
       prior: float, *traits: str, shards: str | None = None,
       trainable: bool | None = None) -> Entry:
    """An entry; a method that shards trains, and one that trains may still run as one process
    (`trainable=True` without `shards`) when it is not wired for several GPUs."""
    return Entry(name, f"strategies.{module}:SPEC", family, frozenset(tasks),
                 trainable=shards is not None if trainable is None else trainable,
                 shards=shards, profile=profile, prior=prior,
                 traits=frozenset(traits))


_ADAPTER = ("trains_llm", "adapter")
# Preference trainers: a LoRA policy (or reward model) per step of `batch_size` pairs.
_PAIRS = Profile(train="adapter", inference="generate", lora_inputs=True,
                 sequences_per_example=2)

# The order is the display order.
_ENTRIES: dict[str, Entry] = {e.name: e for e in (
    _e("majority", "majority", "baseline", CLASSIFICATION,
       Profile(model="none", inference="none"), 20, "baseline"),
    _e("zero-shot", "zero_shot", "prompting", LM_TASKS | PREFERENCE, Profile(), 45,
       "prompting", "baseline"),
    _e("few-shot", "few_shot", "prompting", LM_TASKS, Profile(inference="few-shot"), 55,
       "prompting"),
    _e("rag", "rag", "rag", LM_TASKS, Profile(inference="rag"), 45, "retrieval"),
    _e("knn", "knn", "rag", CLASSIFICATION, Profile(model="encoder", inference="encode"), 45,
       "retrieval"),
    _e("transfer", "transfer", "transfer", CLASSIFICATION,
       Profile(model="encoder", train="head", inference="encode"), 50),
    _e("encoder-ft", "encoder_ft", "transfer", CLASSIFICATION,
       Profile(model="encoder", train="full", inference="encode"), 50, shards="fsdp"),
    # SetFit: the whole encoder trains on sentence pairs (two texts per row of a step); one
    # process always: it is not wired for DDP/FSDP.
    _e("setfit", "setfit", "transfer", CLASSIFICATION,
       Profile(model="encoder", train="full", inference="encode", time_factor=2.0), 50,
       trainable=True),
    _e("full", "full", "fine-tuning", LM_TASKS, Profile(train="full"), 40, "trains_llm",
       "resumable", shards="fsdp"),
    _e("freeze", "freeze", "fine-tuning", LM_TASKS,
       Profile(train="full", trained_fraction=0.25), 35, "trains_llm", "resumable",
       shards="fsdp"),
    _e("lora", "lora", "peft", LM_TASKS, Profile(train="adapter", lora_inputs=True), 55,
       *_ADAPTER, "resumable", shards="ddp"),
    _e("qlora", "qlora", "peft", LM_TASKS,
       Profile(train="adapter", quantized=True, checkpointing=True, lora_inputs=True), 50,
       *_ADAPTER, "resumable", shards="ddp"),
    _e("dora", "dora", "peft", LM_TASKS,
       Profile(train="adapter", time_factor=1.3, lora_inputs=True, dora=True), 48, *_ADAPTER,
       "resumable", shards="ddp"),
    _e("prompt-tuning", "prompt_tuning", "peft", LM_TASKS,
       Profile(train="adapter", adapter="prompt"), 35, *_ADAPTER, "resumable", shards="ddp"),
    _e("prefix-tuning", "prefix_tuning", "peft", LM_TASKS,
       Profile(train="adapter", adapter="prefix"), 35, *_ADAPTER, "resumable", shards="ddp"),
    _e("ia3", "ia3", "peft", LM_TASKS, Profile(train="adapter", adapter="ia3"), 42, *_ADAPTER,
       "resumable", shards="ddp"),
    _e("loha", "loha", "peft", LM_TASKS,
       Profile(train="adapter", adapter="loha", time_factor=1.2), 40, *_ADAPTER, "resumable",
       shards="ddp"),
    _e("adalora", "adalora", "peft", LM_TASKS,
       Profile(train="adapter", time_factor=1.2, lora_inputs=True), 42, *_ADAPTER,
       shards="ddp"),
    _e("sft-chosen", "sft_chosen", "preference", PREFERENCE,
       dataclasses.replace(_PAIRS, sequences_per_example=1), 55, shards="ddp"),
    # chosen + rejected through the policy (trained) and the reference (adapter disabled)
    _e("dpo", "dpo", "preference", PREFERENCE, dataclasses.replace(_PAIRS, time_factor=3.0), 55,
       shards="ddp"),
    _e("reward-model", "reward_model", "preference", PREFERENCE,
       dataclasses.replace(_PAIRS, time_factor=2.0), 40, shards="ddp"),
    # online RL: sampling completions dominates; ~4x DPO's work is a rough, stated guess
    _e("rlhf", "rlhf", "preference", PREFERENCE, dataclasses.replace(_PAIRS, time_factor=12.0),
       35, shards="ddp"),
)}


def rag_base(name: str) -> str | None:
    """`lora` for `lora+rag` (None for any other name)."""
    if name.endswith(RAG_SUFFIX) and len(name) > len(RAG_SUFFIX):
        return name[: -len(RAG_SUFFIX)]
    return None


def is_peft_type(name: str) -> bool:
    return name.startswith(PEFT_PREFIX) and len(name) > len(PEFT_PREFIX)


def names() -> list[str]:
    """Every listed candidate, in display order (not the derived peft:/+rag names)."""
    return list(_ENTRIES)


def is_known(name: str) -> bool:
    base = rag_base(name)
    if base is not None:
        return is_known(base)
    return name in _ENTRIES or is_peft_type(name)


def entry(name: str) -> Entry | None:
    """The entry of a name, derived for `peft:<type>` and `<base>+rag`; None when unknown."""
    base = rag_base(name)
    if base is not None:
        found = entry(base)
        if found is None:
            return None
        # retrieval in front of a fine-tuned LM: its training is the base candidate's
        return dataclasses.replace(found, name=name, target=None, tasks=found.tasks & RAG_TASKS)
    if is_peft_type(name):
        return Entry(name, None, "peft", LM_TASKS, trainable=True, shards="ddp",
                     profile=Profile(train="adapter"), prior=40.0, traits=frozenset(_ADAPTER))
    return _ENTRIES.get(name)


def with_trait(trait: str) -> tuple[str, ...]:
    """Listed names carrying `trait`, in display order (see TraitNames for a live view)."""
    if trait not in TRAITS:
        raise ValueError(f"unknown trait {trait!r}; known: {', '.join(sorted(TRAITS))}")
    return tuple(name for name, e in _ENTRIES.items() if trait in e.traits)


def families_where(test) -> tuple[str, ...]:
    """Families with at least one listed entry passing `test(entry)`, in display order."""
    found: dict[str, None] = {}
    for e in _ENTRIES.values():
        if test(e):
            found.setdefault(e.family)
    return tuple(found)


def add(new: Entry) -> None:
    """Add an entry at run time (plugins, tests); it goes last in the display order."""
    if new.name in _ENTRIES:
        raise ValueError(f"strategy {new.name!r} is already registered")
    _ENTRIES[new.name] = new


def snapshot() -> dict[str, Entry]:
    """A copy of the entries, for `restore` (tests that register fakes)."""
    return dict(_ENTRIES)


def restore(saved: dict[str, Entry]) -> None:
    _ENTRIES.clear()
    _ENTRIES.update(saved)


class TraitNames(Sequence[str]):
    """The listed names carrying a trait, read at each use, so an entry added at run time
    (`add`) is seen by whoever holds the view (the advisor's rules keep these as constants).
    Adds to tuples: `PROMPTING + RETRIEVAL`, `TRAINS_LLM + ("encoder-ft",)`."""

    def __init__(self, trait: str) -> None:
        if trait not in TRAITS:
            raise ValueError(f"unknown trait {trait!r}; known: {', '.join(sorted(TRAITS))}")
        self.trait = trait

    def _names(self) -> tuple[str, ...]:
        return with_trait(self.trait)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    def __getitem__(self, index):
        return self._names()[index]

    def __contains__(self, name: object) -> bool:
        return name in self._names()

    def __add__(self, other: Iterable[str]) -> tuple[str, ...]:
        return self._names() + tuple(other)

    def __radd__(self, other: Iterable[str]) -> tuple[str, ...]:
        return tuple(other) + self._names()

    def __repr__(self) -> str:
        return f"TraitNames({self.trait!r}: {', '.join(self._names())})"
