"""The advisor's questions, as data: one per key of the answers schema (DESIGN.md).

The TUI builds its screens from this list and `advisor.answers` validates files against it. A
question says what it asks, why it matters (its help text names the rule it feeds), its type and
choices. The answers are a nested dict addressed by the questions' dotted keys (`get`, `put`); a
value that does not fit its question is an `AnswersError`. This module imports nothing else of
the advisor: answers, rules and the TUI all build on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.errors import TunewiseError

TASKS = ("classification", "generation", "qa", "preference")
LEVELS = ("low", "medium", "high")


class AnswersError(TunewiseError):
    """An answers file the user must fix: where, what, and what is allowed."""


def get(answers: dict[str, Any], key: str, default: Any = None) -> Any:
    """A dotted key ("data.labeled_examples") from nested answers; `default` if unanswered."""
    node: Any = answers
    for part in key.split("."):
        if not isinstance(node, dict) or node.get(part) is None:
            return default
        node = node[part]
    return node


def put(answers: dict[str, Any], key: str, value: Any) -> None:
    """Set a dotted key, creating sections; `None` removes the key."""
    *parents, leaf = key.split(".")
    node = answers
    for part in parents:
        node = node.setdefault(part, {})
    if value is None:
        node.pop(leaf, None)
    else:
        node[leaf] = value


@dataclass(frozen=True)
class Question:
    key: str  # dotted answers key: "data.labeled_examples"
    screen: str  # data | labels | resources | goals | model
    text: str
    help: str
    type: str  # choice | int | float | bool | path | text
    choices: tuple[str, ...] = ()
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None

    @property
    def id(self) -> str:
        return self.key.replace(".", "-")


QUESTIONS: tuple[Question, ...] = (
    # data
    Question("data.path", "data", "Data file", "CSV, TSV, JSON, JSONL, Parquet or a saved "
             "datasets folder. Its profile (rows, labels, lengths, task) fills in the rest.",
             "path"),
    Question("task", "data", "Task kind", "Detected from the columns; change it if the "
             "detection is wrong.", "choice", TASKS),
    Question("data.corpus", "data", "Document corpus (optional)", "A file of documents the "
             "answers can be looked up in. A corpus makes RAG a candidate (rule changing-knowledge).",
             "path"),
    Question("data.knowledge_changes", "data", "How often does the knowledge change?",
             "Facts that change are better retrieved than trained in: Ovadia et al. 2023, "
             "RAG 0.875 vs fine-tuning 0.504 on new facts.", "choice",
             ("never", "yearly", "monthly", "weekly", "daily"), "never"),
    Question("data.domain_vocabulary", "data", "How specialised is the vocabulary?",
             "Jargon the base model rarely saw favours adapting weights (Balaguer et al. 2024: "
             "+6 points from fine-tuning).", "choice", LEVELS, "low"),
    Question("data.sensitive", "data", "Is the data sensitive (must stay on your machines)?",
             "Sensitive data rules out hosted APIs; every tunewise candidate runs locally.",
             "bool", (), False),
    # labels
    Question("data.labeled_examples", "labels", "Labelled examples",
             "How many input -> output examples you have. Below ~50, prompting comes first; "
             "from ~50-100, PEFT usually beats in-context learning (T-Few, LoRA MNLI-100).",
             "int", (), None, 0, 10_000_000),
    Question("data.has_labels", "labels", "Do the examples carry the correct output?",
             "Without outputs there is nothing to fine-tune on: prompting or RAG only.",
             "bool", (), True),
    Question("data.has_preference_pairs", "labels", "Do you have preference pairs "
             "(prompt, chosen, rejected)?", "Pairs make preference tuning possible: SFT on the "
             "chosen answers, then DPO (Rafailov et al. 2023).", "bool", (), False),
    # resources
    Question("resources.gpu_memory_gb", "resources", "GPU memory (GB)",
             "Detected from nvidia-smi; empty means no GPU. Below twice the model's 16-bit size, "
             "QLoRA is the way to fine-tune (Dettmers et al. 2023).", "float", (), None, 0, 4096),
    Question("resources.cpu_only", "resources", "CPU only?", "No GPU at all: training is slow; "
             "prompting, RAG and small models first.", "bool", (), False),
    Question("resources.budget_usd", "resources", "Budget for adapting (USD)",
             "Candidates whose estimated cost exceeds it are marked as not fitting.", "float",
             (), None, 0, 1e9),
    Question("resources.time_budget_hours", "resources", "Time budget (hours)",
             "Candidates whose estimated time exceeds it are marked as not fitting.", "float",
             (), None, 0, 1e6),
    Question("resources.skill_level", "resources", "ML engineering experience",
             "Low: prompting and RAG are easier to build and keep running.", "choice",
             ("low", "moderate", "high"), "moderate"),
    # goals
    Question("goals.target_metric", "goals", "Target score (0-1)",
             "The quality you need on the primary metric. When the zero-shot probe already "
             "scores above it, fine-tuning moves down.", "float", (), None, 0, 1),
    Question("goals.priority", "goals", "What matters most?", "Quality, cost, latency, or a "
             "balance of them.", "choice", ("quality", "cost", "latency", "balanced"),
             "balanced"),
    Question("goals.latency_ms", "goals", "Latency limit per request (ms)",
             "Tight limits favour a small fine-tuned model over long prompts (T-Few: 1000x "
             "fewer inference FLOPs than in-context learning).", "float", (), None, 0, 1e7),
    Question("goals.monthly_requests", "goals", "Requests per month", "High volume makes "
             "per-request prompt length the dominant cost.", "int", (), None, 0, 10**12),
    Question("goals.hallucination_risk", "goals", "Cost of a wrong or made-up answer",
             "High: ground answers in retrieved documents (fine-tuning on new facts increases "
             "hallucination, Gekhman et al. 2024).", "choice", LEVELS, "medium"),
    Question("goals.style_control", "goals", "How much must the output style/format be "
             "controlled?", "High: LoRA teaches format reliably (Predibase LoRA Land).",
             "choice", LEVELS, "medium"),
    Question("goals.retraining", "goals", "One-off or periodic retraining?", "Periodic: small "
             "adapters are cheap to retrain and to store (LoRA checkpoints ~10,000x smaller).",
             "choice", ("one_off", "periodic"), "one_off"),
    # model
    Question("model.base", "model", "Base model", "A bundled name (smollm2-135m), a Hugging "
             "Face id or a local folder.", "text", (), "smollm2-135m"),
    Question("model.params_b", "model", "Base model size (billions of parameters)",
             "Known for built-in shapes; prompt tuning only matches fine-tuning at ~10B+ "
             "(Lester et al. 2021).", "float", (), None, 0, 10_000),
)
QUESTIONS_BY_KEY: dict[str, Question] = {q.key: q for q in QUESTIONS}
SCREENS = ("data", "labels", "resources", "goals")


def questions_for(screen: str) -> list[Question]:
    return [q for q in QUESTIONS if q.screen == screen]


def coerce(question: Question, value: Any, where: str = "") -> Any:
    """The value as the question's type, or AnswersError saying what is allowed."""
    where = where or question.key
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        if question.type == "choice":
            text = str(value).strip().lower().replace("-", "_") if question.key == "goals.retraining" \
                else str(value).strip().lower()
            if text not in question.choices:
                raise ValueError(f"choose one of {', '.join(question.choices)}")
            return text
        if question.type == "bool":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("yes", "true", "1", "y", "on"):
                return True
            if text in ("no", "false", "0", "n", "off"):
                return False
            raise ValueError("answer yes or no")
        if question.type in ("int", "float"):
            if isinstance(value, bool):
                raise ValueError("expected a number")
            text = str(value).strip().replace("_", "").replace(",", "")
            number = float(text)
            if question.type == "int":
                if number != int(number):
                    raise ValueError("expected a whole number")
                number = int(number)
            if question.minimum is not None and number < question.minimum:
                raise ValueError(f"must be at least {question.minimum:g}")
            if question.maximum is not None and number > question.maximum:
                raise ValueError(f"must be at most {question.maximum:g}")
            return number
        return str(value).strip()
    except ValueError as exc:
        message = str(exc)
        if message.startswith("could not convert") or "invalid literal" in message:
            message = f"expected a {'whole ' if question.type == 'int' else ''}number"
        raise AnswersError(f"{where}: {value!r} is not valid: {message}") from None

