"""`tunewise export`: a candidate of a run as a folder others can load, and `tunewise predict` can.

    tunewise export runs/<run-id> knn out/knn                    # encoder + FAISS index + labels
    tunewise export runs/<run-id> transfer out/transfer          # encoder + logistic regression
    tunewise export runs/<run-id> encoder-ft out/encoder-ft      # fine-tuned classifier
    tunewise export runs/<run-id> rag out/rag                    # index + encoder + prompt settings
    tunewise export runs/<run-id> lora out/lora-adapter          # peft adapter (small)
    tunewise export runs/<run-id> lora out/lora-merged --merge   # plain transformers model
    tunewise export runs/<run-id> full out/full-model            # full fine-tuning: the model
    tunewise predict out/knn --input new.csv --output predictions.jsonl

Every export holds `tunewise_export.json` (strategy, task, base model and encoder as Hugging Face
ids or local folders, labels, config, data hash, run id) and a README.md with the load code.
Bundled names are written as the ids they stand for (smollm2-135m ->
HuggingFaceTB/SmolLM2-135M-Instruct, minilm-l6 -> sentence-transformers/all-MiniLM-L6-v2); the
tiny test models have no hub id, so their local folder is written.

--merge folds the adapter into the base weights (LoRA, DoRA, IA3, LoHa, AdaLoRA, QLoRA — a
QLoRA adapter is merged into the float base, not the 4-bit one). Prompt and prefix tuning
cannot be merged: their learned vectors are inputs, not weight updates; export the adapter.
majority, zero-shot and few-shot train nothing: there is no model to export (exit 2).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any, Callable

from bench.errors import TunewiseError

MANIFEST = "tunewise_artifact.json"  # strategies.training.ARTIFACT_MANIFEST (kept import-free)
EXPORT_MANIFEST = "tunewise_export.json"  # what `tunewise predict` reads
EXPORT_FORMAT = 1
ENCODER_DIR = "encoder"  # the sentence encoder inside knn / transfer / rag exports

# Bundled short names -> the Hugging Face ids they are copies of (bench.models).
HUB_IDS = {
    "smollm2-135m": "HuggingFaceTB/SmolLM2-135M-Instruct",
    "minilm-l6": "sentence-transformers/all-MiniLM-L6-v2",
}
# The bundled SmolLM2 ships as a Q4_1 GGUF converted to float: the hub's bf16 weights differ a
# little, which matters for an adapter trained on the converted ones.
HUB_ID_NOTES = {
    "smollm2-135m": "tunewise's bundled copy is converted from a Q4_1 GGUF; the hub's original "
                    "weights differ slightly, so scores may move a little",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run folder written by tunewise bench")
    parser.add_argument("strategy", metavar="STRATEGY", help="the candidate to export, e.g. knn, "
                        "transfer, encoder-ft, rag, lora")
    parser.add_argument("out", metavar="OUT", help="folder to write (must be new or empty)")
    parser.add_argument("--merge", action="store_true",
                        help="fold the adapter into the base weights: a plain transformers model")
    parser.add_argument("--force", action="store_true", help="overwrite a non-empty OUT")


def run(args: argparse.Namespace) -> int:
    run_dir, strategy = Path(args.run_dir), args.strategy
    if not run_dir.is_dir():
        raise TunewiseError(f"{run_dir} is not a run folder (it does not exist)")
    facts = RunFacts.read(run_dir, strategy)
    refuse_modelless(strategy, facts)
    facts.check_candidate(run_dir, strategy)
    exporter = EXPORTERS.get(strategy, export_trained)
    source = candidate_work_dir(run_dir, strategy, facts)
    if exporter is not export_trained:
        check_saved(source, strategy)
    out = prepare_out(Path(args.out), force=args.force)
    manifest, what = exporter(source, facts, out, args)
    (out / EXPORT_MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    (out / "README.md").write_text(readme(manifest, out), encoding="utf-8")
    hint = load_hint(manifest, out)
    print(f"exported {strategy} ({what}) from {source}")
    print(hint)
    print(out)
    return 0


# --------------------------------------------------------------------------- the run's facts


class RunFacts:
    """What the run folder says about a candidate: task, models, split labels, config, ids.

    Every fact is optional: a work folder alone (no manifest.json) still exports what its own
    artifact manifest describes."""

    def __init__(self, manifest: dict[str, Any], split: dict[str, Any],
                 record: dict[str, Any] | None):
        self.manifest, self.split, self.record = manifest, split, record

    @classmethod
    def read(cls, run_dir: Path, strategy: str) -> "RunFacts":
        from bench import journal

        manifest = _read_optional(run_dir / journal.MANIFEST) or {}
        split = _read_optional(run_dir / journal.SPLIT) or {}
        records = [r for r in journal.read_records(run_dir) if r.get("strategy") == strategy] \
            if (run_dir / journal.RESULTS).exists() else []
        return cls(manifest, split, records[-1] if records else None)

    def check_candidate(self, run_dir: Path, strategy: str) -> None:
        """A candidate of this run that finished: its saved files and config are complete."""
        known = self.manifest.get("strategies")
        if known and strategy not in known:
            raise TunewiseError(f"{strategy!r} is not a candidate of the run {run_dir} "
                                f"(its candidates: {', '.join(known)})")
        record = self.record or {}
        models = self.manifest.get("models") or []
        if len(models) > 1 and record.get("variant"):
            # one record per base model (bench.plan): which one to export is not asked yet
            raise TunewiseError(f"{run_dir} ran {strategy} on several base models "
                                f"({', '.join(models)}); exporting one of them is not supported "
                                f"yet: rerun {strategy} with that --model alone, then export")
        if known and record.get("status") == "skipped":
            raise TunewiseError(f"{strategy} was skipped in {run_dir}, so it has no model: "
                                f"{record.get('error')}")
        if known and record.get("status") != "ok":
            status = record.get("status", "not run yet")
            raise TunewiseError(f"{strategy} did not finish in {run_dir} (status: {status}); "
                                "finish it with tunewise bench --resume RUN_DIR, then export")

    @property
    def task(self) -> str | None:
        return self.manifest.get("task") or self.split.get("task")

    @property
    def model(self) -> str | None:
        return self.manifest.get("model")

    @property
    def encoder(self) -> str | None:
        return self.manifest.get("encoder")

    @property
    def config(self) -> dict[str, Any]:
        return dict((self.record or {}).get("config") or {})

    @property
    def first_seed(self) -> int | None:
        seeds = self.manifest.get("seeds")
        return seeds[0] if seeds else None

    def common(self, strategy: str) -> dict[str, Any]:
        """The manifest fields every export has."""
        return {
            "format": EXPORT_FORMAT,
            "strategy": strategy,
            "task": self.task,
            "labels": list(self.split.get("labels") or []),
            "label_names": dict(self.split.get("label_names") or {}),
            "instruction": self.split.get("instruction"),
            "config": self.config,
            "seed": self.first_seed,
            "run_id": self.manifest.get("run_id"),
            "data_hash": (self.manifest.get("data") or {}).get("hash"),
        }


def _read_optional(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def hub_id(name: str | None) -> str | None:
    """A model name as a run gives it -> what from_pretrained elsewhere needs: the hub id of a
    bundled copy, an absolute folder for local models (the tiny test models too), a hub id as is."""
    if name is None:
        return None
    if name in HUB_IDS:
        return HUB_IDS[name]
    from bench.models import resolve

    ref = resolve(name)
    return str(Path(ref.path).resolve()) if Path(ref.path).exists() else ref.path


def model_fields(prefix: str, name: str | None) -> dict[str, Any]:
    """{prefix: hub id or folder, prefix_name: the run's name, prefix_note: caveat or None}."""
    return {prefix: hub_id(name), f"{prefix}_name": name,
            f"{prefix}_note": HUB_ID_NOTES.get(name or "")}


# --------------------------------------------------------------------------- no model


def refuse_modelless(strategy: str, facts: RunFacts) -> None:
    """majority, zero-shot and few-shot learn no weights: say what they are instead."""
    base = hub_id(facts.model) if facts.model else "the run's --model"
    if strategy == "majority":
        label = ((facts.record or {}).get("info") or {}).get("majority_label")
        said = f" ({label!r})" if label else ""
        raise TunewiseError("majority has no model to export: it answers the most frequent "
                            f"train label{said} for every row")
    if strategy == "zero-shot":
        raise TunewiseError("zero-shot has nothing to export: its model is the base model "
                            f"itself; its id is {base}")
    if strategy == "few-shot":
        raise TunewiseError("few-shot has nothing to export: its model is the base model itself "
                            f"(id {base}) with train rows as demonstrations in the prompt")


# --------------------------------------------------------------------------- where artifacts are


def candidate_work_dir(run_dir: Path, strategy: str, facts: RunFacts) -> Path:
    """runs/<id>/work/<candidate>/, or its first seed's folder when the run had --seeds N."""
    from bench.journal import work_dir

    folder = work_dir(run_dir, strategy)
    seed = facts.first_seed
    if seed is not None and (folder / f"seed{seed}").is_dir():
        return folder / f"seed{seed}"
    return folder


# The file or folder each non-LM candidate leaves in its work folder (strategies/*.py).
SAVED = {
    "knn": "knn_index",
    "transfer": "logreg_head.joblib",
    "encoder-ft": "encoder_ft_model",
    "rag": "rag_index",
}


def check_saved(source: Path, strategy: str) -> None:
    if not (source / SAVED[strategy]).exists():
        raise TunewiseError(f"no saved model for {strategy!r} in {source}: the candidate did "
                            "not finish, or the run predates saved artifacts (rerun it)")


def find_artifact(run_dir: Path, strategy: str, source: Path | None = None) -> Path:
    """The trained-LM artifact folder of `strategy`: its work folder first, then any manifest."""
    found = sorted((source or run_dir).glob(f"**/{MANIFEST}"))
    if not found:
        found = [m for m in sorted(run_dir.glob(f"**/{MANIFEST}"))
                 if json.loads(m.read_text()).get("strategy") == strategy]
    if not found:
        available = sorted({json.loads(m.read_text()).get("strategy", "?")
                            for m in run_dir.glob(f"**/{MANIFEST}")})
        exportable = sorted(set(available) | {name for name in SAVED
                                              if (run_dir / "work" / name).is_dir()})
        hint = (f"candidates with a saved model in this run: {', '.join(exportable)}"
                if exportable else "this run has no saved model (knn, transfer, encoder-ft, "
                "rag and the trainable candidates such as lora or full save one)")
        raise TunewiseError(f"no saved model for {strategy!r} in {run_dir}; {hint}")
    return found[0].parent  # with --seeds N the first seed's model


def prepare_out(out: Path, *, force: bool) -> Path:
    if out.exists() and not out.is_dir():
        raise TunewiseError(f"{out} exists and is not a folder")
    if out.exists() and any(out.iterdir()):
        if not force:
            raise TunewiseError(f"{out} is not empty; choose a new folder or pass --force")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    return out


# --------------------------------------------------------------------------- exporters
# Each: (work folder, run facts, out folder, args) -> (export manifest, what was exported).


def save_encoder(facts: RunFacts, out: Path) -> Path:
    """The run's sentence encoder, saved whole into the export (same weights, same pooling)."""
    from bench.models import load_model

    if not facts.encoder:
        raise TunewiseError("the run folder has no manifest.json naming its encoder")
    encoder, _ = load_model(facts.encoder, "sentence-encoder")
    encoder.save(str(out / ENCODER_DIR))
    return out / ENCODER_DIR


def export_knn(source: Path, facts: RunFacts, out: Path, args) -> tuple[dict, str]:
    shutil.copytree(source / SAVED["knn"], out, dirs_exist_ok=True)
    save_encoder(facts, out)
    return ({**facts.common("knn"), **model_fields("encoder", facts.encoder),
             "kind": "knn", "files": {"encoder": ENCODER_DIR, "index": "index.faiss",
                                      "train_labels": "train_labels.json"}},
            "encoder + FAISS index + train labels")


def export_transfer(source: Path, facts: RunFacts, out: Path, args) -> tuple[dict, str]:
    shutil.copy2(source / SAVED["transfer"], out / "head.joblib")
    save_encoder(facts, out)
    return ({**facts.common("transfer"), **model_fields("encoder", facts.encoder),
             "kind": "transfer", "files": {"encoder": ENCODER_DIR, "head": "head.joblib"}},
            "encoder + logistic-regression head")


def export_encoder_ft(source: Path, facts: RunFacts, out: Path, args) -> tuple[dict, str]:
    shutil.copytree(source / SAVED["encoder-ft"], out, dirs_exist_ok=True)
    return ({**facts.common("encoder-ft"), **model_fields("encoder", facts.encoder),
             "kind": "seq-cls", "files": {"model": "."}},
            "fine-tuned encoder + classification head")


def export_rag(source: Path, facts: RunFacts, out: Path, args) -> tuple[dict, str]:
    shutil.copytree(source / SAVED["rag"], out, dirs_exist_ok=True)
    save_encoder(facts, out)
    return ({**facts.common("rag"), **model_fields("base_model", facts.model),
             **model_fields("encoder", facts.encoder), "kind": "rag",
             "files": {"encoder": ENCODER_DIR, "index": "index.faiss", "chunks": "chunks.jsonl"}},
            "FAISS index + encoder + prompt settings; the base LLM is loaded by id")


def export_trained(source: Path, facts: RunFacts, out: Path, args) -> tuple[dict, str]:
    """LoRA, QLoRA, DoRA, other peft adapters (as adapter or --merge), full and freeze."""
    artifact = find_artifact(Path(args.run_dir), args.strategy, source)
    saved = json.loads((artifact / MANIFEST).read_text())
    if saved["kind"] == "full" or not args.merge:
        shutil.copytree(artifact, out, dirs_exist_ok=True)
        kind = "full" if saved["kind"] == "full" else "adapter"
        what = "model" if kind == "full" else "adapter"
    else:
        merge_adapter(artifact, saved, out)
        kind, what = "full", "merged model"
    common = facts.common(args.strategy)
    # A bare work folder (no run manifest) still knows its task, labels and config.
    for key in ("task", "labels", "label_names", "instruction", "config"):
        if not common.get(key) and saved.get(key):
            common[key] = saved[key]
    base = saved.get("base_model") or facts.model
    return ({**common, **model_fields("base_model", base), "kind": kind,
             "merged": kind == "full" and saved["kind"] != "full",
             "quantization": saved.get("quantization") if kind == "adapter" else None,
             "files": {"model": "."}}, what)


def merge_adapter(artifact: Path, manifest: dict, out: Path) -> None:
    from peft import PeftModel

    from bench.models import load_model
    from strategies.training import drop_stale_gguf_quantization

    # Always merge into float weights: merging into a 4-bit base would round the update away.
    base, tokenizer = load_model(manifest["base_model"], "causal-lm")
    drop_stale_gguf_quantization(base)
    model = PeftModel.from_pretrained(base, str(artifact))
    if model.peft_config["default"].is_prompt_learning:
        raise TunewiseError(f"{manifest['strategy']} learns input vectors, not weight updates, so "
                            "it cannot be merged; export it without --merge (a peft adapter)")
    merged = model.merge_and_unload()
    merged.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    (out / MANIFEST).write_text(json.dumps(
        {**manifest, "kind": "full", "merged_from": str(artifact), "quantization": None}, indent=2))


EXPORTERS: dict[str, Callable[..., tuple[dict, str]]] = {
    "knn": export_knn,
    "transfer": export_transfer,
    "encoder-ft": export_encoder_ft,
    "rag": export_rag,
}


# --------------------------------------------------------------------------- load hints


def load_code(manifest: dict[str, Any], out: Path) -> list[str]:
    """Python that loads the export without tunewise, with real ids."""
    here = str(out)
    encoder = f"SentenceTransformer({str(out / ENCODER_DIR)!r})"
    if manifest["kind"] == "knn":
        return [f"encoder = {encoder}",
                f"index = faiss.read_index({str(out / 'index.faiss')!r})",
                f"labels = json.load(open({str(out / 'train_labels.json')!r}))"
                "  # label of each indexed row; vote over the k nearest"]
    if manifest["kind"] == "transfer":
        return [f"encoder = {encoder}",
                f"head = joblib.load({str(out / 'head.joblib')!r})",
                "# labels = head.predict(encoder.encode(texts, normalize_embeddings=True))"]
    if manifest["kind"] == "seq-cls":
        return [f"model = AutoModelForSequenceClassification.from_pretrained({here!r})"]
    if manifest["kind"] == "rag":
        return [f"encoder = {encoder}",
                f"index = faiss.read_index({str(out / 'index.faiss')!r})",
                f"llm = AutoModelForCausalLM.from_pretrained({manifest.get('base_model')!r})"]
    if manifest["kind"] == "full":
        return [f"model = AutoModelForCausalLM.from_pretrained({here!r})"]
    return [f"model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained("
            f"{manifest.get('base_model')!r}), {here!r})"]


def load_hint(manifest: dict[str, Any], out: Path) -> str:
    """What `tunewise export` prints: the load code, its caveat, and the predict command."""
    text = "load with:\n" + "\n".join(f"    {line}" for line in load_code(manifest, out))
    note = manifest.get("base_model_note") if manifest["kind"] in ("rag", "adapter") else None
    if note:
        text += f"\n    # {note}"
    return text + f"\nor answer new rows: tunewise predict {out} --input FILE"


def readme(manifest: dict[str, Any], out: Path) -> str:
    roles = {"base_model": "base model", "encoder": "sentence encoder"}
    models = [f"- {label}: `{manifest[role]}`" + (f" ({manifest[role + '_note']})"
                                                 if manifest.get(role + "_note") else "")
              for role, label in roles.items() if manifest.get(role)]
    if (out / ENCODER_DIR).is_dir():
        models.append(f"- the encoder's weights are included in `{ENCODER_DIR}/`")
    return "\n".join([
        f"# {manifest['strategy']} ({manifest.get('task') or 'task unknown'})", "",
        f"Exported by `tunewise export` from run `{manifest.get('run_id')}` "
        f"(data hash `{manifest.get('data_hash')}`).", "",
        *models, "", "Load it:", "", "```python", *load_code(manifest, out), "```", "",
        "Or answer new rows (CSV/JSONL/...) with the code path the run scored:", "",
        "```sh", f"tunewise predict {out} --input FILE --output predictions.jsonl", "```", "",
        f"`{EXPORT_MANIFEST}` lists the labels, the candidate's config and the files.", ""])
