"""`lora`: low-rank adapters (Hu et al. 2021) on all linear layers of the base LM, via peft.

All linear layers by default: the QLoRA paper found adapters on every linear layer are needed to
match 16-bit full fine-tuning; attention-only LoRA trails. `dora` reuses this module with
`use_dora=True`, `qlora` with a 4-bit base.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from strategies.base import RunContext, StrategySpec, option
from strategies.training import LM_TASKS, TrainingConfig, TrainPlan, peft_config_for, run_finetune


@dataclass
class LoraSettings(TrainingConfig):
    learning_rate: float = option(5e-4, help="peak learning rate; LoRA wants ~10x full FT's")
    r: int = option(8, help="adapter rank; higher increases capacity, memory and artifact size")
    alpha: int = option(16, help="scaling numerator: the update is scaled by alpha / r")
    dropout: float = option(0.05, help="dropout on the adapter's input")
    target_modules: list = option(["all-linear"], help="module names to adapt (comma-separated "
                                  "on the CLI); all-linear = every linear layer but the LM head")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.r < 1 or self.alpha <= 0:
            raise ValueError(f"r must be >= 1 and alpha > 0, got r={self.r}, alpha={self.alpha}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if not self.target_modules:
            raise ValueError("target_modules must name at least one module (or all-linear)")


def lora_config(config: LoraSettings, *, use_dora: bool = False,
                peft_args: dict[str, Any] | None = None, method: str = "lora"):
    """peft's LoraConfig from the settings, with --peft-args (peft's names) on top."""
    from peft import LoraConfig

    targets = config.target_modules
    return peft_config_for(LoraConfig, method, peft_args or {}, r=config.r, lora_alpha=config.alpha,
                           lora_dropout=config.dropout, use_dora=use_dora,
                           target_modules="all-linear" if targets == ["all-linear"] else list(targets))


def wrap_with_lora(model, config: LoraSettings, *, use_dora: bool = False,
                   plan: TrainPlan | None = None, method: str = "lora"):
    from peft import get_peft_model

    from strategies.base import StrategyError

    peft_config = lora_config(config, use_dora=use_dora, method=method,
                              peft_args=plan.peft_args if plan else None)
    try:
        peft_model = get_peft_model(model, peft_config)
    except ValueError as exc:  # e.g. a target module name the model does not have
        raise StrategyError(f"cannot add LoRA adapters: {exc}") from None
    applied = peft_model.peft_config["default"]  # what ran, --peft-args included
    targets = applied.target_modules  # names, or one regex string from --peft-args
    info = {"r": applied.r, "alpha": applied.lora_alpha, "dropout": applied.lora_dropout,
            "target_modules": targets if isinstance(targets, str) else
            sorted({name.rsplit(".", 1)[-1] for name in targets}),
            "use_dora": bool(applied.use_dora)}
    return peft_model, info


def build(model, config: LoraSettings, plan: TrainPlan):
    return wrap_with_lora(model, config, plan=plan)


def run(ctx: RunContext, config: LoraSettings):
    return run_finetune(ctx, config, build, strategy="lora")


SPEC = StrategySpec(
    name="lora", family="peft", tasks=LM_TASKS, config_cls=LoraSettings, run=run,
    description="LoRA adapters on all linear layers of the LM (peft)", trainable=True,
)
