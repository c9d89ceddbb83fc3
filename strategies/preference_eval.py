"""Evaluation shared by every preference policy: the base model (`zero-shot`), `sft-chosen`,
`dpo`, `rlhf`, and the reward model's own scores.

    predictions = evaluate_policy(ctx, model, tokenizer)                    # logps + answers
    predictions = evaluate_policy(ctx, model, tokenizer, baseline=base_answers, judge=judge)

One `PreferencePrediction` per test pair:
- response_a_logp / response_b_logp: mean per-token log-probability of each of the pair's two
  responses given the prompt (length-normalised, so a policy is not rewarded for preferring the
  shorter answer). A test pair shows its responses as neutral response_a / response_b in a
  shuffled order; the harness, which kept the labels, maps them back to chosen / rejected and
  turns them into preference accuracy;
- response: the policy's greedy answer (batched, left padding, `max_new_tokens` small);
- with a judge (a reward model trained on the train split only): judge_score of the answer, and
  the base model's answer with its score, for the win rate.

Prompt formatting, the same in every preference strategy and in training: the HH-RLHF text
("Human: ... Assistant: ...") is turned into user/assistant messages and rendered with the
model's chat template, so an instruct model sees the conversation the way it was trained to, and
TRL's trainers (given the same messages) tokenise exactly what we score here. Long multi-turn
prompts lose their oldest turns first, so the question being answered is always kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from strategies.base import PAIR_FIELDS, PAIR_LOGP_FIELDS, PreferencePrediction, RunContext

# Defaults sized for a CPU and the bundled hh_helpful_mini sample (short answers).
DEFAULT_MAX_PROMPT_TOKENS = 192
DEFAULT_MAX_RESPONSE_TOKENS = 64
DEFAULT_MAX_NEW_TOKENS = 32

_TURN = re.compile(r"(?:^|\n+)\s*(Human|Assistant|User|System):", re.IGNORECASE)
_ROLES = {"human": "user", "user": "user", "assistant": "assistant", "system": "system"}

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class EvalSettings:
    """How policies are scored and asked to answer; recorded in every record's info."""

    max_prompt_tokens: int = DEFAULT_MAX_PROMPT_TOKENS  # oldest turns dropped beyond this
    max_response_tokens: int = DEFAULT_MAX_RESPONSE_TOKENS  # responses scored up to this
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS  # greedy answer length for the win rate
    batch_size: int = 8

    def generation_info(self) -> dict[str, Any]:
        return {"decoding": "greedy", "max_new_tokens": self.max_new_tokens,
                "max_prompt_tokens": self.max_prompt_tokens,
                "max_response_tokens_scored": self.max_response_tokens,
                "prompt_format": "chat template over HH Human/Assistant turns"}


def settings_from(config: Any) -> EvalSettings:
    """EvalSettings from a strategy config that has some of the same field names."""
    defaults = EvalSettings()
    return EvalSettings(**{name: getattr(config, name, getattr(defaults, name))
                           for name in EvalSettings.__dataclass_fields__})


# --------------------------------------------------------------------------- prompt format


def hh_to_messages(prompt: str | Sequence[dict[str, str]]) -> Messages:
    """'Human: a\\n\\nAssistant: b\\n\\nHuman: c\\n\\nAssistant:' -> user/assistant messages.

    Chat-format prompts (already a list of {"role", "content"}) pass through. Text before the
    first turn marker, or a prompt without markers, becomes a user message. The trailing empty
    "Assistant:" (where the answer goes) is dropped, so the last message is the user's.
    """
    if not isinstance(prompt, str):
        return [{"role": m["role"], "content": m["content"]} for m in prompt]
    messages: Messages = []
    markers = list(_TURN.finditer(prompt))
    head = prompt[: markers[0].start()].strip() if markers else prompt.strip()
    if head:
        messages.append({"role": "user", "content": head})
    for marker, following in zip(markers, markers[1:] + [None]):
        end = following.start() if following else len(prompt)
        text = prompt[marker.end(): end].strip()
        role = _ROLES[marker.group(1).lower()]
        if not text:
            continue
        if messages and messages[-1]["role"] == role:  # merge repeated speakers
            messages[-1]["content"] += "\n\n" + text
        else:
            messages.append({"role": role, "content": text})
    while messages and messages[-1]["role"] == "assistant" and len(messages) > 1:
        messages.pop()  # an unfinished assistant prefix is not part of the question
    if not messages:
        messages.append({"role": "user", "content": prompt.strip() if isinstance(prompt, str) else ""})
    return messages


def render_prompt(tokenizer, messages: Messages) -> str:
    """The text the policy continues: chat template with the assistant turn opened."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    turns = [f"{'Human' if m['role'] == 'user' else 'Assistant'}: {m['content']}" for m in messages]
    return "\n\n".join(turns) + "\n\nAssistant:"


def render_conversation(tokenizer, messages: Messages, response: str) -> str:
    """Prompt plus a finished assistant turn (what a reward model reads)."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(
            messages + [{"role": "assistant", "content": response}], tokenize=False)
    return render_prompt(tokenizer, messages) + " " + response + (tokenizer.eos_token or "")


def _n_tokens(tokenizer, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def fit_messages(tokenizer, prompt, max_prompt_tokens: int) -> Messages:
    """The prompt's messages, oldest turns dropped until the rendered prompt fits.

    The last user turn always stays; if it alone is too long, its beginning is cut (the end of
    a message usually holds the actual question)."""
    messages = hh_to_messages(prompt)
    while len(messages) > 1 and _n_tokens(tokenizer, render_prompt(tokenizer, messages)) > max_prompt_tokens:
        messages = messages[1:]
        while len(messages) > 1 and messages[0]["role"] == "assistant":
            messages = messages[1:]
    overflow = _n_tokens(tokenizer, render_prompt(tokenizer, messages)) - max_prompt_tokens
    if overflow > 0:
        ids = tokenizer(messages[-1]["content"], add_special_tokens=False)["input_ids"]
        kept = tokenizer.decode(ids[min(len(ids) - 1, overflow):], skip_special_tokens=True)
        messages = messages[:-1] + [{"role": messages[-1]["role"], "content": kept}]
    return messages


def truncate_text(tokenizer, text: str, max_tokens: int) -> str:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(ids) <= max_tokens:
        return text
    return tokenizer.decode(ids[:max_tokens], skip_special_tokens=True)


def conversational_pairs(tokenizer, rows: Sequence[dict], settings: EvalSettings) -> list[dict]:
    """TaskSplit preference rows -> TRL's conversational preference format, fitted to budget:
    {"prompt": [messages], "chosen": [assistant msg], "rejected": [assistant msg]}."""
    pairs = []
    for row in rows:
        messages = fit_messages(tokenizer, row["prompt"], settings.max_prompt_tokens)
        pairs.append({
            "prompt": messages,
            "chosen": [{"role": "assistant", "content": truncate_text(
                tokenizer, response_text(row["chosen"]), settings.max_response_tokens)}],
            "rejected": [{"role": "assistant", "content": truncate_text(
                tokenizer, response_text(row["rejected"]), settings.max_response_tokens)}],
        })
    return pairs


def response_text(response) -> str:
    """A response as text: chat-format rows carry [{"role": "assistant", "content": ...}]."""
    if isinstance(response, str):
        return response.strip()
    return "\n\n".join(m["content"] for m in response if m.get("role", "assistant") == "assistant").strip()


# --------------------------------------------------------------------------- scoring


def response_token_ids(tokenizer, messages: Messages, response: str,
                       max_response_tokens: int) -> tuple[list[int], list[int]]:
    """(prompt ids, response ids) exactly as TRL splits them: the response starts where the
    tokenised prompt and prompt+response diverge, and includes the end-of-turn tokens."""
    prompt_ids = tokenizer(render_prompt(tokenizer, messages), add_special_tokens=False)["input_ids"]
    full_ids = tokenizer(render_conversation(tokenizer, messages, response),
                         add_special_tokens=False)["input_ids"]
    common = 0
    for a, b in zip(prompt_ids, full_ids):
        if a != b:
            break
        common += 1
    return full_ids[:common], full_ids[common:][:max_response_tokens]


def mean_response_logps(model, pairs: Sequence[tuple[list[int], list[int]]], pad_id: int,
                        batch_size: int = 8, on_batch: Callable[[int, int], None] | None = None
                        ) -> list[float]:
    """Mean per-token log P(response | prompt) for each (prompt ids, response ids), batched with
    right padding (positions then match an unpadded forward pass)."""
    import torch

    device = next(model.parameters()).device
    results: list[float] = []
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(pairs), batch_size):
            batch = pairs[start: start + batch_size]
            width = max(len(p) + len(r) for p, r in batch)
            ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for i, (p, r) in enumerate(batch):
                ids[i, : len(p) + len(r)] = torch.tensor(p + r)
                mask[i, : len(p) + len(r)] = 1
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
            logp = torch.log_softmax(logits[:, :-1], dim=-1)
            token_logp = logp.gather(-1, ids[:, 1:].to(device).unsqueeze(-1)).squeeze(-1).cpu()
            for i, (p, r) in enumerate(batch):
                # token at position t is predicted at t - 1
                span = token_logp[i, len(p) - 1: len(p) - 1 + len(r)]
                results.append(float(span.mean()) if len(r) else float("nan"))
            if on_batch is not None:
                on_batch(min(start + batch_size, len(pairs)), len(pairs))
    if was_training:
        model.train()
    return results


def generate_answers(model, tokenizer, prompts: Sequence[str], max_new_tokens: int,
                     batch_size: int = 8, on_batch: Callable[[int, int], None] | None = None
                     ) -> tuple[list[str], int]:
    """Greedy answers to rendered prompts (left padding so every row continues at the same
    position). Returns the answers and the tokens processed (prompt + generated)."""
    import torch

    device = next(model.parameters()).device
    answers: list[str] = []
    tokens = 0
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for start in range(0, len(prompts), batch_size):
                batch = list(prompts[start: start + batch_size])
                encoded = tokenizer(batch, return_tensors="pt", padding=True,
                                    add_special_tokens=False).to(device)
                output = model.generate(
                    **encoded, max_new_tokens=max_new_tokens, do_sample=False,
                    pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                    temperature=None, top_p=None, top_k=None)
                new = output[:, encoded["input_ids"].shape[1]:]
                tokens += int(encoded["attention_mask"].sum()) + int((new != tokenizer.pad_token_id).sum())
                answers += [text.strip() for text in tokenizer.batch_decode(new, skip_special_tokens=True)]
                if on_batch is not None:
                    on_batch(min(start + batch_size, len(prompts)), len(prompts))
    finally:
        tokenizer.padding_side = side
        if was_training:
            model.train()
    return answers, tokens


@dataclass
class Judge:
    """A reward model that scores (prompt, answer): the win-rate referee.

    `description` says which data it was trained on; it goes into the record's info."""

    model: Any  # AutoModelForSequenceClassification with num_labels=1
    tokenizer: Any
    description: dict[str, Any] = field(default_factory=dict)

    def score(self, messages_list: Sequence[Messages], responses: Sequence[str],
              batch_size: int = 8) -> list[float]:
        import torch

        texts = [render_conversation(self.tokenizer, m, r) for m, r in zip(messages_list, responses)]
        device = next(self.model.parameters()).device
        scores: list[float] = []
        side = self.tokenizer.padding_side
        self.tokenizer.padding_side = "right"
        self.model.eval()
        try:
            with torch.inference_mode():
                for start in range(0, len(texts), batch_size):
                    encoded = self.tokenizer(texts[start: start + batch_size], return_tensors="pt",
                                             padding=True, add_special_tokens=False).to(device)
                    scores += self.model(**encoded).logits[:, 0].float().cpu().tolist()
        finally:
            self.tokenizer.padding_side = side
        return scores


# --------------------------------------------------------------------------- the evaluation


@dataclass
class PolicyEvaluation:
    predictions: list[PreferencePrediction]
    predict_tokens: int
    mean_prompt_tokens: float
    info: dict[str, Any]


def evaluate_policy(ctx: RunContext, model, tokenizer, baseline=None, judge: Judge | None = None,
                    settings: EvalSettings | None = None) -> list[PreferencePrediction]:
    """One PreferencePrediction per test pair (see the module docstring).

    baseline: the base model (scored with `tokenizer`), or its answers already generated (a list
    of strings, one per test pair), or None. judge: a Judge, or None (no win-rate fields)."""
    return evaluate_policy_full(ctx, model, tokenizer, baseline, judge, settings).predictions


def evaluate_policy_full(ctx: RunContext, model, tokenizer, baseline=None,
                         judge: Judge | None = None,
                         settings: EvalSettings | None = None) -> PolicyEvaluation:
    """evaluate_policy plus the token counts and info a strategy puts in its StrategyOutput."""
    settings = settings or EvalSettings()
    rows = ctx.data.test
    messages_list = [fit_messages(tokenizer, row["prompt"], settings.max_prompt_tokens) for row in rows]
    # Both responses of every pair, in the order the pair shows them (the strategy cannot know
    # which one was chosen; the harness maps the scores back).
    sides = [[response_token_ids(tokenizer, m, response_text(r[name]), settings.max_response_tokens)
              for m, r in zip(messages_list, rows)] for name in PAIR_FIELDS]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    def report(what):
        return lambda done, total: ctx.progress("predict", done, total, message=what)

    logps = mean_response_logps(model, sides[0] + sides[1], pad_id, settings.batch_size,
                                report("scoring both responses of each pair"))
    n = len(rows)
    a_key, b_key = PAIR_LOGP_FIELDS
    predictions: list[PreferencePrediction] = [
        {a_key: logps[i], b_key: logps[n + i]} for i in range(n)]
    tokens = sum(len(p) + len(r) for p, r in sides[0] + sides[1])

    prompts = [render_prompt(tokenizer, m) for m in messages_list]
    answers, generated_tokens = generate_answers(model, tokenizer, prompts, settings.max_new_tokens,
                                                 settings.batch_size, report("greedy answers"))
    tokens += generated_tokens
    for prediction, answer in zip(predictions, answers):
        prediction["response"] = answer

    info: dict[str, Any] = {"generation": settings.generation_info(),
                            "preference_accuracy_basis": "mean per-token log-probability"}
    if judge is not None:
        baseline_answers = _baseline_answers(baseline, tokenizer, prompts, settings, report)
        scores = judge.score(messages_list, answers, settings.batch_size)
        for prediction, score in zip(predictions, scores):
            prediction["judge_score"] = score
        if baseline_answers is not None:
            baseline_scores = judge.score(messages_list, baseline_answers, settings.batch_size)
            for prediction, answer, score in zip(predictions, baseline_answers, baseline_scores):
                prediction["baseline_response"] = answer
                prediction["baseline_judge_score"] = score
        info["judge"] = judge.description
        info["win_rate_opponent"] = "base model, greedy" if baseline_answers is not None else None
    prompt_lengths = [_n_tokens(tokenizer, p) for p in prompts]
    return PolicyEvaluation(predictions, tokens, sum(prompt_lengths) / max(1, len(prompt_lengths)),
                            info)


def _baseline_answers(baseline, tokenizer, prompts, settings, report) -> list[str] | None:
    if baseline is None:
        return None
    if isinstance(baseline, (list, tuple)):
        if len(baseline) != len(prompts):
            raise ValueError(f"{len(baseline)} baseline answers for {len(prompts)} test pairs")
        return list(baseline)
    answers, _ = generate_answers(baseline, tokenizer, prompts, settings.max_new_tokens,
                                  settings.batch_size, report("base model answers"))
    return answers
