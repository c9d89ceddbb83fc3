"""`qlora`: LoRA on a 4-bit base (Dettmers et al. 2023): bitsandbytes NF4 with double
quantisation and bf16 compute, `prepare_model_for_kbit_training`, gradient checkpointing, LoRA on
all linear layers, and a paged 8-bit AdamW on CUDA.

bitsandbytes runs NF4 on the CPU too, so this candidate runs here, with two CPU changes the
record states: float32 compute (CPUs without bf16 instructions emulate bf16) and a plain AdamW
(the 8-bit paged optimizers need CUDA). A CPU step still takes 2.5x LoRA's: the NF4 weights are
dequantised before every matmul (advisor.estimate.QUANTIZED_CPU_SLOWDOWN, measured 2026-11-27).
"""

from __future__ import annotations

from dataclasses import dataclass

from strategies.base import RunContext, StrategyError, StrategySpec, option
from strategies.lora import LoraSettings, wrap_with_lora
from strategies.training import LM_TASKS, TrainPlan, run_finetune


@dataclass
class QLoraSettings(LoraSettings):
    gradient_checkpointing: bool = option(True, help="recompute activations in the backward "
                                          "pass: part of the QLoRA memory recipe, ~30% slower")


def build(model, config: QLoraSettings, plan: TrainPlan):
    from peft import prepare_model_for_kbit_training

    if not getattr(model, "is_loaded_in_4bit", False):
        raise StrategyError("qlora: the model did not load in 4-bit (bitsandbytes NF4)")
    # Casts norms/embeddings to fp32 for stable training and enables input gradients, which
    # gradient checkpointing needs when every base weight is frozen.
    model = prepare_model_for_kbit_training(
        model, use_gradient_checkpointing=config.gradient_checkpointing)
    peft_model, info = wrap_with_lora(model, config, plan=plan, method="qlora")
    quant = getattr(model.config, "quantization_config", None)
    compute = getattr(quant, "bnb_4bit_compute_dtype", None) or (
        quant.get("bnb_4bit_compute_dtype") if isinstance(quant, dict) else None)
    return peft_model, {**info, "quantization": "nf4+double-quant",
                        "compute_dtype": str(compute).replace("torch.", "") if compute else None}


def run(ctx: RunContext, config: QLoraSettings):
    return run_finetune(ctx, config, build, strategy="qlora", quantization="nf4",
                        paged_8bit_on_cuda=True)


SPEC = StrategySpec(
    name="qlora", family="peft", tasks=LM_TASKS, config_cls=QLoraSettings, run=run,
    description="QLoRA: LoRA on an NF4 4-bit base (bitsandbytes), paged 8-bit AdamW on CUDA",
    trainable=True,
)
