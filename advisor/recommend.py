"""From answers (+ data + hardware) to a ranking with estimates: the advisor's one entry point.

    from advisor.recommend import recommend
    result = recommend(answers)                 # profiles answers' data.path, probes hardware
    result.ranking.as_dict()                    # the `tunewise advise --json` object
    result.ranking.recommended()                # baselines + the best fitting candidates

This is where the I/O lives (profiling the data, probing the hardware, measuring the CPU); the
rules in advisor.rules stay pure. Nothing here imports torch unless a model's shape has to come
from its config through transformers (not for bundled names or the built-in shapes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from advisor import rules
from advisor.answers import get
from advisor.estimate import (Machine, ModelShape, Workload, configured_workload, estimate,
                              preset_max_steps, profile_for, reference_shape, shape_for,
                              this_machine, workload_from_profile)
from bench.errors import TunewiseError

DEFAULT_MODEL = "smollm2-135m"
DEFAULT_ENCODER = "minilm-l6"


@dataclass
class Recommendation:
    ranking: rules.Ranking
    facts: rules.Facts
    profile: dict[str, Any] | None
    hardware: dict[str, Any]
    machine: Machine
    workload: Workload
    model: str
    notes: list[str] = field(default_factory=list)  # what could not be estimated, and why
    shape: str | None = None  # the model shape the estimates used, when it is not `model`'s
    probes: Any = None  # advisor.probes.Probes: what was measured before the advice, if anything


def load_profile(path: str, task: str | None = None, model: str | None = None, *,
                 domain_model: str | None = None, encoder: str = DEFAULT_ENCODER,
                 notes: list[str] | None = None) -> dict[str, Any]:
    """bench.data's profile of a data file or folder (raises TunewiseError with the problem);
    with `domain_model`, also its domain measurement (bench.domain) under "domain"."""
    from bench.data import load_task_data

    loaded = load_task_data(path, task=task)
    if domain_model:
        domain = measured_domain(loaded.split, domain_model, encoder,
                                 notes if notes is not None else [])
        if domain is not None:
            loaded.profile["domain"] = domain
    return loaded.profile


def domain_model_for(base: str | None, notes: list[str]) -> str:
    """The model whose perplexity measures the domain: the base model when it is bundled or a
    local folder, else the default one (loading a hub model on this machine would take long;
    the perplexity ratio compares across models, so the default one still tells)."""
    from bench.models import BUNDLED

    if base is None or base in BUNDLED or Path(base).is_dir():
        return base or DEFAULT_MODEL
    notes.append(f"the domain was measured with {DEFAULT_MODEL}, not {base} (not a local "
                 "folder); the perplexity ratio compares across models")
    return DEFAULT_MODEL


def measured_domain(split, model: str, encoder: str, notes: list[str]) -> dict[str, Any] | None:
    """bench.domain's record for the split, or None with a note saying why it could not be
    measured (the advice goes on without it)."""
    from bench.domain import measure_domain

    try:
        return measure_domain(split, model, encoder)
    except (TunewiseError, OSError, ImportError) as exc:
        notes.append(f"the domain was not measured: {exc} (`--no-domain` skips it)")
        return None


def measured_probes(answers: dict[str, Any], path: str, notes: list[str], *,
                    encoder: str = DEFAULT_ENCODER, on_event=None,
                    training_candidate: str | None = None):
    """advisor.probes on the data's validation split (then `training_candidate` on a short
    budget when the cheap probes leave room), or None with a note saying why they could not
    run (the advice goes on from the rules alone). A probe that failed is a note."""
    from advisor.probes import run_probes

    try:
        probes = run_probes(path, task=get(answers, "task"), corpus=get(answers, "data.corpus"),
                            model=get(answers, "model.base") or DEFAULT_MODEL, encoder=encoder,
                            on_event=on_event, label_names=get(answers, "data.label_names"),
                            training_candidate=training_candidate)
    except (TunewiseError, OSError, ImportError) as exc:
        notes.append(f"the probes did not run: {exc} (`--no-probe` skips them)")
        return None
    for name, why in probes.failed.items():
        notes.append(f"probe {name} did not score: {why}")
    return probes


def training_candidate(ranking: rules.Ranking) -> str | None:
    """The fitting LLM-training candidate the rules rank highest: the one the probes' second
    stage measures on a short budget (None when none fits)."""
    return next((c.strategy for c in ranking.ranked
                 if c.fits and c.strategy in rules.TRAINS_LLM), None)


def candidate_names() -> list[str]:
    """Every candidate of the strategy catalogue (plugins registered at run time included)."""
    from strategies import catalogue

    return catalogue.names()


def model_shape(model: str, notes: list[str]) -> ModelShape | None:
    try:
        return shape_for(model)
    except (TunewiseError, OSError, ValueError) as exc:
        notes.append(f"no estimate for {model}: {exc} (pass a config.json to `tunewise estimate`)")
        return None


def stated_size_shape(answers: dict[str, Any], notes: list[str]) -> ModelShape | None:
    """model.params_b without model.base: the reference shape of that size, so that the
    estimates describe the model the rules reason about (not the default small one)."""
    params_b = get(answers, "model.params_b")
    try:
        shape = reference_shape(params_b)
    except TunewiseError as exc:
        notes.append(f"no estimates for a {params_b:g}B model: {exc}")
        return None
    notes.append(f"model.params_b {params_b:g} without model.base: estimated with "
                 f"{shape.name}'s published shape ({shape.params / 1e9:.2g}B parameters)")
    return shape


def check_stated_size(answers: dict[str, Any], shape: ModelShape | None,
                      notes: list[str]) -> None:
    """A stated model.params_b far from model.base's real size: the rules use the stated one."""
    params_b = get(answers, "model.params_b")
    if shape is None or not params_b or params_b <= 0:
        return
    ratio = shape.params / (params_b * 1e9)
    if not 1 / 1.5 <= ratio <= 1.5:
        notes.append(f"model.params_b {params_b:g} but {shape.name} has "
                     f"{shape.params / 1e9:.2g}B parameters: the rules use {params_b:g}B, the "
                     f"estimates {shape.name}'s shape")


def estimates_for(names: list[str], shape: ModelShape | None, work: Workload, machine: Machine,
                  encoder: ModelShape | None, *, preset: str = "quick",
                  overrides: dict[str, dict[str, Any]] | None = None
                  ) -> dict[str, dict[str, float]]:
    """Each candidate's estimate for `work` as its own config sets it up (`preset`, then the
    `--set` overrides); none for an LLM candidate when the LLM's shape is unknown."""
    found: dict[str, dict[str, float]] = {}
    for name in names:
        try:
            if shape is None and profile_for(name).model == "llm":
                continue
            configured = configured_workload(name, work, preset, overrides)
            found[name] = estimate(name, shape or encoder, configured, machine,
                                   encoder).as_dict()
        except TunewiseError:
            continue  # a plugin strategy without an estimate profile: ranked, not estimated
    return found


def recommend(answers: dict[str, Any], *, profile: dict[str, Any] | None = None,
              hardware: dict[str, Any] | None = None, data_path: str | None = None,
              measure: bool = True, probe_score: float | None = None, preset: str = "quick",
              overrides: dict[str, dict[str, Any]] | None = None,
              prices_path: str | None = None, domain: bool = False,
              encoder: str = DEFAULT_ENCODER, probe: bool = False, probes: Any = None,
              on_probe_event=None) -> Recommendation:
    """Rank every candidate for these answers. `profile`/`hardware` given: no I/O for them;
    `measure=False`: the reference CPU throughput instead of measuring this machine. Each
    candidate is estimated as `bench` would run it: its config under `preset` (the step cap
    included) with `overrides` (`--set`), priced with the price table at `prices_path` (else
    $TUNEWISE_PRICES, else bench/prices.toml). `domain`: when the data is profiled here, also
    measure how far it lies from general text (loads the base model and `encoder`; a rule
    reads it). `probe`: with data, first measure the cheap candidates on its validation split
    (advisor.probes; `probes` passes measured ones in), and rank with what they measured."""
    notes: list[str] = []
    path = data_path or get(answers, "data.path")
    if profile is None and path:
        domain_model = domain_model_for(get(answers, "model.base"), notes) if domain else None
        profile = load_profile(path, task=get(answers, "task"), domain_model=domain_model,
                               encoder=encoder, notes=notes)
    if hardware is None:
        from bench.hardware import probe as probe_hardware

        hardware = probe_hardware()
    base = get(answers, "model.base")
    model = base or DEFAULT_MODEL
    stand_in = base is None and get(answers, "model.params_b") is not None
    if stand_in:
        shape = stated_size_shape(answers, notes)
    else:
        shape = model_shape(model, notes)
        check_stated_size(answers, shape, notes)
    encoder_name, encoder = encoder, shape_for(DEFAULT_ENCODER)
    params_b = shape.params / 1e9 if shape else None
    facts = rules.Facts.from_inputs(answers, profile, hardware, params_b=params_b,
                                    probe_score=probe_score,
                                    probes=probes.scores if probes is not None else None,
                                    probe_metric=probes.metric if probes is not None else None)
    machine = this_machine(hardware, gpu_memory_gb=facts.gpu_memory_gb, cpu_only=facts.cpu_only,
                           measure=measure, prices_path=prices_path)
    max_steps = preset_max_steps(preset)
    work = workload_from_profile(profile, max_steps=max_steps)
    if profile is None and facts.labeled_examples:
        work = Workload(train_rows=facts.labeled_examples,
                        test_rows=max(facts.labeled_examples // 4, 20), max_steps=max_steps)
    names = candidate_names()
    estimates = estimates_for(names, shape, work, machine, encoder, preset=preset,
                              overrides=overrides)
    ranking = rules.rank(facts, estimates, names)
    if probes is None and probe and path:
        # the rules-only ranking above names the training candidate the probes' second
        # stage measures; then the ranking again, with what the probes measured
        probes = measured_probes(answers, path, notes, encoder=encoder_name,
                                 on_event=on_probe_event,
                                 training_candidate=training_candidate(ranking))
        if probes is not None:
            facts = rules.Facts.from_inputs(answers, profile, hardware, params_b=params_b,
                                            probe_score=probe_score, probes=probes.scores,
                                            probe_metric=probes.metric)
            ranking = rules.rank(facts, estimates, names)
    if probes is not None and (probes.scores or probes.failed):
        ranking.probes = probes.as_dict()
    return Recommendation(ranking, facts, profile, hardware, machine, work, model, notes,
                          shape=shape.name if stand_in and shape is not None else None,
                          probes=probes)
