"""Peak GPU memory and training tokens/s of full fine-tuning, LoRA and QLoRA on random-weight
Llama models built from real configs (no weights downloaded), at sequence 512, batch 1 and 8.

    python benchmarks/finetune_gpu_memory.py                # all shapes, all methods
    python benchmarks/finetune_gpu_memory.py --shapes 135m  # one shape

Needs a CUDA GPU (and bitsandbytes for QLoRA); prints one JSON line per measurement and a
table with the advisor's estimate beside each measurement (advisor.estimate's training memory
and step time for the same shape, batch and length on this GPU) and their ratios.
A cut-down copy of the real path: the model in bf16 as bench.models loads it on a GPU, full
fine-tuning's trained weights then in float32 (strategies.training_loop.upcast_trainable), the same
peft configs (LoRA r=8, alpha 16, dropout 0.05 on all linear layers; QLoRA = NF4 + double
quantisation + bf16 compute + prepare_model_for_kbit_training + gradient checkpointing + paged
8-bit AdamW), torch AdamW for full and LoRA as the Trainer's `adamw_torch`.
`bash benchmarks/gpu_check.sh` runs it on a lent GPU machine; RESULTS.md has what it printed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
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


# Saved bf16 copies of the random models, one per shape: QLoRA quantises through from_pretrained
# as the real loader does, and saving a 7B model once instead of per batch size saves minutes.
_SAVED: dict[str, str] = {}


def saved_copy(shape: str, model) -> str:
    if shape not in _SAVED:
        # RAM-backed where there is one: a 7B copy is 13 GB
        folder = tempfile.mkdtemp(dir="/dev/shm" if os.access("/dev/shm", os.W_OK) else None)
        model.save_pretrained(folder)
        _SAVED[shape] = folder
    return _SAVED[shape]


def build(shape: str, method: str):
    import torch
    from transformers import BitsAndBytesConfig, LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(max_position_embeddings=2048, **SHAPES[shape])
    torch.manual_seed(0)
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)  # built in bf16: no fp32 copy of a 7B model first
    try:
        with torch.device("cuda"):
            model = LlamaForCausalLM(config)
    finally:
        torch.set_default_dtype(default)
    if method == "qlora":
        from peft import prepare_model_for_kbit_training
        from transformers import AutoModelForCausalLM

        folder = saved_copy(shape, model)
        del model
        torch.cuda.empty_cache()
        model = AutoModelForCausalLM.from_pretrained(folder, device_map={"": 0}, dtype=torch.bfloat16,
                                                     quantization_config=BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16))
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
    if method == "full":
        from strategies.training_loop import upcast_trainable

        upcast_trainable(model)  # float32 weights, bf16 autocast: as run_finetune trains them
    if method in ("lora", "qlora"):
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05,
                                                 target_modules="all-linear",
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
    torch.cuda.reset_peak_memory_stats()  # the peak of training, not of building or quantising
    weights = torch.cuda.memory_allocated()
    optimizer, optimizer_name = optimizer_for(model, method)
    vocab = SHAPES[shape]["vocab_size"]
    ids = torch.randint(0, vocab, (batch, seq), device="cuda")
    timings, states = [], 0
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
        else:  # weights + optimizer states, between steps
            states = torch.cuda.memory_allocated()
    result = {"shape": shape, "method": method, "batch": batch, "seq": seq,
              "optimizer": optimizer_name,
              "peak_memory_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2),
              "weights_gb": round(weights / 2**30, 2),
              "optimizer_states_gb": round((states - weights) / 2**30, 2),
              "step_s": round(sum(timings) / len(timings), 4),
              "tokens_per_s": round(batch * seq / (sum(timings) / len(timings))),
              "loss_finite": bool(torch.isfinite(loss).item()),
              "gpu": torch.cuda.get_device_name(0)}
    del model, optimizer
    return result


def model_shape(shape: str):
    """The estimator's ModelShape of one of SHAPES (sizes only)."""
    from advisor.estimate_shapes import shape_from_config

    return shape_from_config({**SHAPES[shape], "model_type": "llama"}, shape)


def estimated(shape: str, method: str, batch: int, seq: int, gpu: str, memory_gb: float) -> dict:
    """advisor.estimate's view of the same step: training memory (weights, gradients, optimizer
    states with the best-weights copy, activations) and one step's seconds, on this GPU."""
    from advisor.estimate import gpu_machine
    from advisor.estimate_memory import GB, training_memory
    from advisor.estimate_time import step_time_s
    from advisor.estimate_workload import Workload, profile_for

    model = model_shape(shape)
    machine = gpu_machine(gpu, memory_gb)
    work = Workload(batch_size=batch, seq_len=seq, lora_dropout=0.05 if method != "full" else 0.0)
    parts = training_memory(model, profile_for(method), work, machine, seq)
    step_s = step_time_s(method, model, batch * seq, machine)
    return {"est_peak_memory_gb": round(sum(v for k, v in parts.items()
                                            if k != "trained_params") / GB, 2),
            "est_weights_gb": round(parts["weights"] / GB, 2),
            "est_optimizer_gb": round(parts["optimizer"] / GB, 2),
            "est_tokens_per_s": round(batch * seq / step_s)}


def measure_forward(shape: str, batch: int, seq: int, repeats: int = 10) -> dict:
    """Seconds of one inference forward pass of the bf16 model (what prediction and label
    scoring repeat), against the FLOP estimate: whether prediction has a launch floor too."""
    import torch

    from advisor.estimate import gpu_machine

    model = build(shape, "base").eval()
    ids = torch.randint(0, SHAPES[shape]["vocab_size"], (batch, seq), device="cuda")
    with torch.inference_mode():
        for _ in range(2):  # warm-up
            model(input_ids=ids)
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(repeats):
            model(input_ids=ids)
        torch.cuda.synchronize()
    forward_s = (time.perf_counter() - start) / repeats
    layers = SHAPES[shape]["num_hidden_layers"]
    matmul = model_shape(shape).matmul_params
    flops_s = 2 * matmul * batch * seq / gpu_machine(torch.cuda.get_device_name(0)).flops
    del model
    return {"shape": shape, "batch": batch, "seq": seq, "forward_s": round(forward_s, 5),
            "ms_per_layer": round(forward_s / layers * 1000, 3), "est_flops_s": round(flops_s, 6)}


def forward_table(shapes: list[str]) -> None:
    rows = [measure_forward(shape, batch, seq) for shape in shapes
            for batch in (1, 16) for seq in (64, 512)]
    for row in rows:
        print(json.dumps(row), flush=True)
    print("\n| shape | batch | seq | forward s | ms per layer | FLOP estimate s |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['shape']} | {r['batch']} | {r['seq']} | {r['forward_s']} "
              f"| {r['ms_per_layer']} | {r['est_flops_s']} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument("--methods", default="full,lora,qlora")
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--forward", action="store_true",
                        help="time inference forward passes instead (batch 1 and 16, 64 and 512 "
                             "tokens)")
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("needs a CUDA GPU: nothing measured")
    if args.forward:
        forward_table(args.shapes.split(","))
        return
    rows = []
    gpu = torch.cuda.get_device_name(0)
    memory_gb = torch.cuda.get_device_properties(0).total_memory / 2**30
    try:
        for shape in args.shapes.split(","):
            for method in args.methods.split(","):
                for batch in map(int, args.batches.split(",")):
                    row = {"shape": shape, "method": method, "batch": batch}
                    try:
                        row = measure(shape, method, batch)
                    except torch.cuda.OutOfMemoryError:
                        row["error"] = "OOM"
                        torch.cuda.empty_cache()
                    row.update(estimated(shape, method, batch, 512, gpu, memory_gb))
                    print(json.dumps(row), flush=True)
                    rows.append(row)
    finally:
        for folder in _SAVED.values():
            shutil.rmtree(folder, ignore_errors=True)
    print(f"\n{gpu}, sequence 512, bf16; est = advisor.estimate for the same step\n")
    print("| shape | method | batch | peak GB | est GB | peak/est | weights GB | est | "
          "opt. states GB | est (+best copy) | tokens/s | est | tok/s / est |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        peak = r.get("peak_memory_gb")
        print(f"| {r['shape']} | {r['method']} | {r['batch']} | {peak or r.get('error')} "
              f"| {r['est_peak_memory_gb']} | {_ratio(peak, r['est_peak_memory_gb'])} "
              f"| {r.get('weights_gb', '-')} | {r['est_weights_gb']} "
              f"| {r.get('optimizer_states_gb', '-')} | {r['est_optimizer_gb']} "
              f"| {r.get('tokens_per_s', '-')} | {r['est_tokens_per_s']} "
              f"| {_ratio(r.get('tokens_per_s'), r['est_tokens_per_s'])} |")


def _ratio(measured, estimate) -> str:
    return f"{measured / estimate:.2f}" if measured and estimate else "-"


if __name__ == "__main__":
    main()
