"""`tunewise export`: a trained candidate of a run as a model others can load.

    tunewise export runs/<run-id> lora out/lora-adapter          # peft adapter (small)
    tunewise export runs/<run-id> lora out/lora-merged --merge   # plain transformers model
    tunewise export runs/<run-id> full out/full-model            # full fine-tuning: the model

Load the results with:

    AutoModelForCausalLM.from_pretrained("out/lora-merged")                    # merged / full
    PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(BASE), "out/lora-adapter")

--merge folds the adapter into the base weights (LoRA, DoRA, IA3, LoHa, AdaLoRA, QLoRA — a
QLoRA adapter is merged into the float base, not the 4-bit one). Prompt and prefix tuning
cannot be merged: their learned vectors are inputs, not weight updates; export the adapter.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from bench.errors import TunewiseError

MANIFEST = "tunewise_artifact.json"  # strategies.training.ARTIFACT_MANIFEST (kept import-free)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run folder written by tunewise bench")
    parser.add_argument("strategy", metavar="STRATEGY", help="the candidate to export, e.g. lora")
    parser.add_argument("out", metavar="OUT", help="folder to write (must be new or empty)")
    parser.add_argument("--merge", action="store_true",
                        help="fold the adapter into the base weights: a plain transformers model")
    parser.add_argument("--force", action="store_true", help="overwrite a non-empty OUT")


def run(args: argparse.Namespace) -> int:
    artifact = find_artifact(Path(args.run_dir), args.strategy)
    out = prepare_out(Path(args.out), force=args.force)
    manifest = json.loads((artifact / MANIFEST).read_text())
    if manifest["kind"] == "full" or not args.merge:
        shutil.copytree(artifact, out, dirs_exist_ok=True)
        what = "model" if manifest["kind"] == "full" else "adapter"
    else:
        merge_adapter(artifact, manifest, out)
        what = "merged model"
    print(f"exported {args.strategy} ({what}) from {artifact}")
    print(load_hint(manifest, out, merged=args.merge))
    print(out)
    return 0


def find_artifact(run_dir: Path, strategy: str) -> Path:
    """The artifact folder of `strategy` in a run: its work folder first, then any manifest."""
    from bench.journal import work_dir

    if not run_dir.is_dir():
        raise TunewiseError(f"{run_dir} is not a run folder (it does not exist)")
    found = sorted(work_dir(run_dir, strategy).glob(f"**/{MANIFEST}"))
    if not found:
        found = [m for m in sorted(run_dir.glob(f"**/{MANIFEST}"))
                 if json.loads(m.read_text()).get("strategy") == strategy]
    if not found:
        available = sorted({json.loads(m.read_text()).get("strategy", "?")
                            for m in run_dir.glob(f"**/{MANIFEST}")})
        hint = (f"candidates with a saved model in this run: {', '.join(available)}"
                if available else "this run has no saved fine-tuned model (only trainable "
                "candidates such as lora or full save one)")
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


def load_hint(manifest: dict, out: Path, *, merged: bool) -> str:
    if manifest["kind"] == "full" or merged:
        return f"load with: AutoModelForCausalLM.from_pretrained({str(out)!r})"
    return (f"load with: PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(BASE), "
            f"{str(out)!r})  # BASE = {manifest['base_model']}")
