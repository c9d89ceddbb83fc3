"""Peak memory of a candidate, for the pre-run estimator (advisor.estimate): weights, gradients,
optimizer states, activations (the formulas are in advisor.estimate's docstring).
"""

from __future__ import annotations

from advisor.estimate_shapes import ModelShape
from advisor.estimate_machine import Machine
from advisor.estimate_workload import LABEL_TOKENS, Workload
from strategies.profile import Profile

GB = 1024**3

# Fixed costs the FLOP count misses, by what the candidate's process imports: peak RSS beyond
# its tensors, fitted on the bundled samples only (`python benchmarks/estimator.py --fit
# /work/runs19/fit`: banking_support and squad_mini, quick preset, 2026-12-03; see
# benchmarks/RESULTS.md). The interpreter, torch and transformers (zero-shot, few-shot,
# encoder-ft; 0.6 before, when the prediction activations were over-counted) ...
CPU_RUNTIME_GB = 0.33
# ... plus sentence-transformers and FAISS for a sentence encoder (knn, transfer, rag, +rag) ...
SENTENCE_ENCODER_RUNTIME_GB = 0.22
# ... plus peft, TRL and datasets for an LLM trainer (lora, full, ...).
TRAINER_RUNTIME_GB = 0.0
# A candidate without a model (majority) never imports torch: its process is the interpreter
# and the harness's child (measured on the idle demo runs of 2026-11-27: 23 MB RSS).
NO_MODEL_RUNTIME_GB = 0.023
# glibc's heap on a CPU: freed activation blocks stay in the process, so the peak RSS of a
# training step is this much above the tensors alive at its peak (measured with
# benchmarks/train_memory.py, SmolLM2-135M, batch 8 x 112 tokens, LoRA with and without
# dropout: 1.37-1.52; 2026-11-27).
CPU_ALLOCATOR_SLACK = 1.5
# The same heap slack over a prediction batch's tensors (inference mode), fitted with the
# runtime above (zero-shot, few-shot and encoder-ft on banking_support: 1.5, as in training).
CPU_INFERENCE_SLACK = 1.5


def runtime_bytes(profile: Profile, retrieval: bool, machine: Machine) -> float:
    """The process's own memory beyond the tensors the estimate counts (CPU RSS; on a GPU the
    estimate is GPU memory, which holds none of it)."""
    if machine.cuda:
        return 0.0
    runtime = CPU_RUNTIME_GB
    sentence_encoder = retrieval or (profile.model == "encoder" and profile.train != "full")
    if sentence_encoder:
        runtime += SENTENCE_ENCODER_RUNTIME_GB
    if profile.model == "llm" and profile.train in ("full", "adapter"):
        runtime += TRAINER_RUNTIME_GB
    return runtime * GB


def lora_params(shape: ModelShape, r: int, target_modules: tuple[str, ...] = ("all-linear",),
                factors: int = 1) -> int:
    """LoRA on the targeted linear layers of every block: r x (in + out) per matrix (LoHa's
    Hadamard product of two low-rank pairs: `factors`=2)."""
    per_layer = sum(r * (n_in + n_out) for n_in, n_out in
                    _targeted_matrices(shape, target_modules))
    return shape.layers * per_layer * factors


def _targeted_matrices(shape: ModelShape,
                       target_modules: tuple[str, ...]) -> list[tuple[int, int]]:
    """(in, out) of each adapted matrix in a block: every linear layer for "all-linear",
    else those named (Llama names: q/k/v/o_proj, gate/up/down_proj; BERT-style shapes count
    every linear layer)."""
    h, i = shape.hidden_size, shape.intermediate_size
    kv = shape.kv_heads * (h // max(shape.heads, 1))
    matrices = {"q_proj": (h, h), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (h, h),
                "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}
    if "all-linear" in target_modules or not shape.causal_lm:
        return list(matrices.values())
    return [dims for name, dims in matrices.items() if name in target_modules]


def adapter_params(shape: ModelShape, profile: Profile, work: Workload) -> int:
    """Trained parameters of the adapter the profile names, at the workload's settings."""
    h = shape.hidden_size
    kv = shape.kv_heads * (h // max(shape.heads, 1))
    if profile.adapter == "loha":
        return lora_params(shape, work.lora_r, work.target_modules, factors=2)
    if profile.adapter == "ia3":  # a scale on the keys, the values and the MLP's input
        return shape.layers * (2 * kv + shape.intermediate_size)
    if profile.adapter == "prompt":
        return work.virtual_tokens * h
    if profile.adapter == "prefix":  # a key and a value per virtual token at every layer
        return work.virtual_tokens * shape.layers * 2 * kv
    return lora_params(shape, work.lora_r, work.target_modules)


def weight_bytes(shape: ModelShape, bytes_per_param: float, quantized: bool) -> float:
    if not quantized:
        return shape.params * bytes_per_param
    # NF4: 4 bits + double-quantised absmax constants (0.127 bit) + the fp32 per-block scale
    # overhead measured by bitsandbytes ~ 0.52 B/param; embeddings stay in the compute dtype.
    rest = shape.params - shape.linear_params
    return shape.linear_params * 0.52 + rest * bytes_per_param


def activation_bytes(shape: ModelShape, seq_len: int, batch_size: int,
                     bytes_per_value: float, checkpointing: bool = False,
                     lora_dropout: bool = False, dora: bool = False) -> float:
    """What the backward pass keeps, plus the logits.

    Decoder (Llama-style, gated MLP): per token and layer, counted from what autograd saves in
    transformers' Llama code: the two RMSNorms' inputs and outputs (4h), attention's query, the
    key and value repeated to every head, its output and the o_proj input copy (5h), the gated
    MLP's gate, activation, up and product (4 x intermediate). LoRA with dropout keeps each
    adapted linear layer's dropped-out input and its mask (1.25 x (6h + intermediate)); DoRA
    also keeps each adapted layer's base output and LoRA output for its magnitude's gradient
    (2 x (3h + 2 kv + 2 x intermediate)).
    Encoders: Korthikanti et al. 2022 eq. 1, sbh x (34 + 5 a s / h) bytes in 16-bit, scaled to
    the dtype: with dropout on the attention probabilities (BERT-style encoders train with 0.1)
    PyTorch's scaled_dot_product_attention takes its math path, which keeps the a x s x s scores,
    their softmax and the dropout mask, the 5 a s / h term.
    The loss keeps the fp32 logits, their log-softmax and both gradients at the peak (4 copies).
    With gradient checkpointing only each layer's input is kept, plus one layer's activations
    while it is recomputed."""
    s, b, h = seq_len, batch_size, shape.hidden_size
    if shape.causal_lm:
        values = 9 * h + 4 * shape.intermediate_size
        if lora_dropout:
            values += 1.25 * (6 * h + shape.intermediate_size)
        if dora:
            kv = shape.kv_heads * (h // max(shape.heads, 1))
            values += 2 * (3 * h + 2 * kv + 2 * shape.intermediate_size)
        per_layer = s * b * values * bytes_per_value
        logits = s * b * shape.vocab_size * 4 * 4
    else:
        per_layer = s * b * h * (34 + 5 * shape.heads * s / h) * (bytes_per_value / 2)
        logits = 0
    if checkpointing:
        return shape.layers * s * b * h * bytes_per_value + per_layer + logits
    return shape.layers * per_layer + logits


def inference_activation_bytes(shape: ModelShape, seq_len: int, batch_size: int,
                               bytes_per_value: float) -> float:
    """Without gradients only one layer's activations live at a time, plus the KV cache of every
    layer and the fp32 logits over the vocabulary (label scoring keeps them all)."""
    s, b, h = seq_len, batch_size, shape.hidden_size
    one_layer = s * b * h * 34 * (bytes_per_value / 2)
    kv_cache = kv_cache_bytes(shape, s, b, bytes_per_value)
    logits = s * b * shape.vocab_size * 4 if shape.causal_lm else 0
    return one_layer + kv_cache + logits


# Label scoring (strategies.scoring) repeats the prompts' KV cache once per label, for at most
# this many (prompt, label) rows per pass (its MAX_PAIR_ROWS).
MAX_PAIR_ROWS = 64


def kv_cache_bytes(shape: ModelShape, tokens: float, rows: float, bytes_per_value: float) -> float:
    """Keys and values of every layer for `rows` sequences of `tokens` (a causal LM's cache)."""
    if not shape.causal_lm:
        return 0.0
    kv_dim = shape.kv_heads * (shape.hidden_size // max(shape.heads, 1))
    return 2 * shape.layers * tokens * rows * kv_dim * bytes_per_value


def prediction_bytes(shape: ModelShape, prompt_len: int, batch_size: int, bytes_per_value: float,
                     n_labels: int = 0, generated: int = 0, label_tokens: int = 0) -> float:
    """What predicting one batch of the longest prompts keeps, in inference mode (no layer's
    activations outlive it): one layer's activations (Korthikanti et al.'s 34 sbh bytes in
    16-bit); for a causal LM the prompts' KV cache and the logits of the last position only
    (strategies.scoring and generate ask for no others), then
    - label scoring with labels of more than one token: the cache repeated for each label of a
      chunk (batch x labels rows, at most MAX_PAIR_ROWS) and those rows' logits over the
      labels' remaining tokens with their log-softmax, in fp32 (one-token labels are scored
      from the prompt's last logits alone);
    - generation: the cache grown by the generated tokens."""
    s, b, h = prompt_len, batch_size, shape.hidden_size
    one_layer = s * b * h * 34 * (bytes_per_value / 2)
    if not shape.causal_lm:
        return one_layer
    cache = kv_cache_bytes(shape, s + generated, b, bytes_per_value)
    last_logits = b * shape.vocab_size * 4 * 2
    labels = 0.0
    label_len = label_tokens or LABEL_TOKENS
    if n_labels > 1 and label_len > 1:
        rows = b * min(n_labels, max(1, MAX_PAIR_ROWS // b))
        labels = (kv_cache_bytes(shape, s + label_len, rows, bytes_per_value)
                  + rows * (label_len - 1) * shape.vocab_size * 4 * 2)
    return one_layer + cache + last_logits + labels


def training_memory(shape: ModelShape, profile: Profile, work: Workload,
                    machine: Machine, seq_len: int | None = None) -> dict[str, float]:
    """Weights, gradients, optimizer states and the activations of a training step at
    `seq_len` tokens per sequence (default: the workload's)."""
    b_w = 2.0 if machine.cuda else 4.0
    weights = weight_bytes(shape, b_w, profile.quantized)
    if profile.train == "full":
        trained = shape.params * (profile.trained_fraction or 1.0)
        # The trained weights are float32 on a GPU too (strategies.training_loop.
        # upcast_trainable: mixed precision, no separate master copy), as are their gradients
        # and Adam's two moments; the frozen rest stays in bf16.
        weights += trained * (4.0 - b_w)
        grads, optimizer = trained * 4.0, trained * 8.0
    elif profile.train == "adapter":
        trained = adapter_params(shape, profile, work)
        grads, optimizer = trained * 4.0, trained * 8.0
    else:  # "head": a logistic-regression head on frozen embeddings
        trained, grads, optimizer = shape.hidden_size * max(work.n_labels, 2), 0.0, 0.0
    sequences = work.batch_size * profile.sequences_per_example
    activations = (activation_bytes(shape, seq_len or work.seq_len, sequences, b_w,
                                    profile.checkpointing,
                                    profile.lora_inputs and work.lora_dropout > 0, profile.dora)
                   if profile.train in ("full", "adapter") else 0.0)
    if not machine.cuda:
        activations *= CPU_ALLOCATOR_SLACK
    # Early stopping keeps a float32 copy of the trained weights at the best validation loss,
    # in the CPU's memory (training_callbacks.KeepBestAndStopEarly): the peak on a CPU only.
    best_copy = (trained * 4.0 if profile.train in ("full", "adapter") and not machine.cuda
                 else 0.0)
    return {"weights": weights, "gradients": grads, "optimizer": optimizer + best_copy,
            "activations": activations, "trained_params": trained}
