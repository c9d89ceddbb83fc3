"""Peak GPU memory and training tokens/s of full fine-tuning, LoRA and QLoRA on random-weight
Llama models built from real configs (no weights downloaded), at sequence 512, batch 1 and 8.

    python benchmarks/finetune_gpu_memory.py                # all shapes, all methods
    python benchmarks/finetune_gpu_memory.py --shapes 135m  # one shape

Needs a CUDA GPU (and bitsandbytes for QLoRA); prints one JSON line per measurement and a
table. Not run yet on a GPU: the numbers go into benchmarks/RESULTS.md when it is.
A cut-down copy of the real path: the same peft configs (LoRA r=8 on all linear layers; QLoRA =
NF4 + double quantisation + bf16 compute + gradient checkpointing + paged 8-bit AdamW).
"""

from __future__ import annotations

import argparse
import json
import time

# Shapes of real models (config values only).
SHAPES = {
    "135m": dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                 num_attention_heads=9, num_key_value_heads=3, vocab_size=49152,
                 tie_word_embeddings=True),  # SmolLM2-135M
    "1.7b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=24,
                 num_attention_heads=32, num_key_value_heads=32, vocab_size=49152,
                 tie_word_embeddings=True),  # SmolLM2-1.7B
    "7b": dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
               num_attention_heads=32, num_key_value_heads=32, vocab_size=32000,
               tie_word_embeddings=False),  # Llama-2-7B
}


def build(shape: str, method: str):
    import torch
    from transformers import BitsAndBytesConfig, LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(max_position_embeddings=2048, **SHAPES[shape])
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = LlamaForCausalLM(config).to(torch.bfloat16)
    if method == "qlora":
        import tempfile

        from peft import prepare_model_for_kbit_training
        from transformers import AutoModelForCausalLM

        # Quantise through from_pretrained, as the real loader does.
        folder = tempfile.mkdtemp()
        model.save_pretrained(folder)
        del model
        torch.cuda.empty_cache()
        model = AutoModelForCausalLM.from_pretrained(folder, device_map={"": 0}, quantization_config=BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16))
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
    if method in ("lora", "qlora"):
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear",
                                                 task_type="CAUSAL_LM"))
    return model


def optimizer_for(model, method: str):
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    if method == "qlora":
        import bitsandbytes as bnb

        return bnb.optim.PagedAdamW8bit(params, lr=1e-4), "paged_adamw_8bit"
    return torch.optim.AdamW(params, lr=1e-5 if method == "full" else 1e-4), "adamw_torch"


def measure(shape: str, method: str, batch: int, seq: int = 512, steps: int = 5) -> dict:
    import torch

    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    model = build(shape, method)
    model.train()
    optimizer, optimizer_name = optimizer_for(model, method)
    vocab = SHAPES[shape]["vocab_size"]
    ids = torch.randint(0, vocab, (batch, seq), device="cuda")
    timings = []
    for step in range(steps + 1):  # the first step warms up kernels and the allocator
        torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        if step:
            timings.append(time.perf_counter() - start)
    result = {"shape": shape, "method": method, "batch": batch, "seq": seq,
              "optimizer": optimizer_name,
              "peak_memory_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2),
              "tokens_per_s": round(batch * seq / (sum(timings) / len(timings))),
              "gpu": torch.cuda.get_device_name(0)}
    del model, optimizer
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument("--methods", default="full,lora,qlora")
    parser.add_argument("--batches", default="1,8")
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("needs a CUDA GPU: nothing measured")
    rows = []
    for shape in args.shapes.split(","):
        for method in args.methods.split(","):
            for batch in map(int, args.batches.split(",")):
                try:
                    row = measure(shape, method, batch)
                except torch.cuda.OutOfMemoryError:
                    row = {"shape": shape, "method": method, "batch": batch, "error": "OOM"}
                    torch.cuda.empty_cache()
                print(json.dumps(row), flush=True)
                rows.append(row)
    print("\n| shape | method | batch | peak GB | tokens/s |\n| --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['shape']} | {r['method']} | {r['batch']} | {r.get('peak_memory_gb', r.get('error'))} "
              f"| {r.get('tokens_per_s', '-')} |")


if __name__ == "__main__":
    main()
