#!/usr/bin/env bash
# The CUDA paths checked in one short run on a lent GPU machine (no registry there, no bundled
# model wheels): the cuda-marked tests, a `tunewise bench --device cuda` run on a random-weight
# model of SmolLM2-135M's shape, and benchmarks/finetune_gpu_memory.py.
#
#   bash benchmarks/gpu_check.sh prepare   # here: wheels into .whl/ and .whl-enc/, tokenizer +
#                                          # tiny-bert into .gpu/
#   bash benchmarks/gpu_check.sh run       # there, from the repo root, with .whl and .gpu carried
#   PARTS="encoders bench" WHEELS=.whl-enc BENCH_STRATEGIES=knn,transfer,encoder-ft,setfit,lora,full \
#       bash benchmarks/gpu_check.sh run   # a second call, with .whl-enc and .gpu carried
#
# Two wheel sets because one call carries 64 MiB: bitsandbytes (43 MB) for QLoRA, FAISS (19 MB)
# and setfit for the sentence-encoder candidates (knn, transfer, rag, encoder-ft, setfit); both
# have trl and datasets for the LLM trainers. The default parts take ~500 s of a call's 600 s.
#
# `run` writes its logs and results under $OUT (default /tmp/gpu_check); PARTS picks the parts
# (default: memory pytest memory7b bench; also `full`: full fine-tuning's memory alone,
# `forward`: inference forward passes (prediction's launch floor), `encoders`: the
# sentence-encoder candidates' cuda tests, `bench`: `tunewise bench --device cuda` on
# BENCH_STRATEGIES). Each part has its own
# time limit, so one that hangs or fails leaves the others their time; the order puts the
# cheapest, most telling parts first. What it printed on 2026-12-04: benchmarks/RESULTS.md, GPU.
set -u
mode=${1:-run}

if [ "$mode" = prepare ]; then
    set -e
    # Wheels the GPU machine's image lacks (Python 3.12 there); its torch, transformers, peft
    # and accelerate are used as they are.
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform any -d .whl \
        trl==1.16.0 bitsandbytes==0.50.2 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19
    # SmolLM2's tokenizer (3.5 MB; its 98 MB GGUF wheel does not travel) builds tiny-llama
    # there; tiny-bert travels built.
    cache=${TUNEWISE_CACHE:-$HOME/.cache/tunewise}/models
    python3 -c "from bench.models import tiny_llama_dir, tiny_bert_dir; tiny_llama_dir(); tiny_bert_dir()"
    mkdir -p .gpu/smollm2-tokenizer
    cp "$cache"/tiny-llama/{tokenizer.json,tokenizer_config.json,chat_template.jinja} .gpu/smollm2-tokenizer/
    rm -rf .gpu/tiny-bert && cp -r "$cache"/tiny-bert .gpu/tiny-bert
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform any -d .whl-enc \
        faiss-cpu==1.15.1 setfit==1.2.0 evaluate==0.4.6 trl==1.16.0 datasets==5.2.0 \
        dill==0.4.1 multiprocess==0.70.19
    du -sh .whl .whl-enc .gpu
    exit 0
fi

OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false TRANSFORMERS_VERBOSITY=error
PARTS=${PARTS:-memory pytest memory7b bench}
BENCH_STRATEGIES=${BENCH_STRATEGIES:-lora,qlora,full}
WHEELS=${WHEELS:-.whl}
stamp() { echo "== $(date -u +%T) $*"; }
part() { [[ " $PARTS " == *" $1 "* ]]; }

stamp environment
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -m pip show torch transformers peft accelerate pyarrow huggingface_hub fsspec 2>/dev/null \
    | grep -E "^(Name|Version):" | paste - - | tee "$OUT/packages.txt"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site "$WHEELS"/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
export TUNEWISE_CACHE=/tmp/tunewise-cache
mkdir -p "$TUNEWISE_CACHE/models" && cp -r .gpu/tiny-bert "$TUNEWISE_CACHE/models/"
timeout 60 python3 - <<'EOF' || exit 1
import importlib.metadata as metadata
from pathlib import Path

import torch

from bench.models import build_tiny_llama, cache_dir

build_tiny_llama(cache_dir() / "tiny-llama", Path(".gpu/smollm2-tokenizer"))
versions = {}
for name in ("bitsandbytes", "trl", "datasets", "faiss-cpu", "setfit"):
    try:
        versions[name] = metadata.version(name)
    except metadata.PackageNotFoundError:  # not in this call's wheel set
        pass
print("torch", torch.__version__, torch.version.cuda, torch.cuda.get_device_name(0), "|", versions)
EOF

if part full; then
    stamp "finetune_gpu_memory: full fine-tuning"
    timeout -k 5 50 python3 benchmarks/finetune_gpu_memory.py --shapes 135m,1.7b \
        --methods full 2>&1 | tee "$OUT/gpu_memory_full.txt" | grep "^[|{]"
    timeout -k 5 60 python3 benchmarks/finetune_gpu_memory.py --shapes 7b --batches 8 \
        --methods full 2>&1 | tee "$OUT/gpu_memory_full_7b.txt" | grep "^[|{]"
fi

if part memory; then
    stamp "finetune_gpu_memory: 135m and 1.7b"
    timeout -k 5 100 python3 benchmarks/finetune_gpu_memory.py --shapes 135m,1.7b \
        2>&1 | tee "$OUT/gpu_memory_small.txt" | grep "^[|{]"
fi

if part pytest; then
    stamp "pytest -m cuda"
    timeout -k 5 190 python3 -m pytest -q -m cuda tests/test_cuda.py -p no:cacheprovider \
        --timeout 120 -rs --durations=8 2>&1 | tee "$OUT/pytest_cuda.txt" | tail -40
fi

if part encoders; then
    stamp "pytest -m cuda: the sentence-encoder candidates"
    timeout -k 5 190 python3 -m pytest -q -m cuda tests/test_cuda.py -p no:cacheprovider \
        -k "rag or knn or transfer or encoder or setfit" --timeout 120 -rs 2>&1 \
        | tee "$OUT/pytest_cuda_encoders.txt" | tail -40
fi

if part forward; then
    stamp "finetune_gpu_memory --forward: inference forward passes"
    timeout -k 5 60 python3 benchmarks/finetune_gpu_memory.py --forward --shapes 135m,1.7b \
        2>&1 | tee "$OUT/gpu_forward.txt" | grep "^[|{]"
fi

if part memory7b; then
    stamp "finetune_gpu_memory: 7b, batch 8"
    timeout -k 5 150 python3 benchmarks/finetune_gpu_memory.py --shapes 7b --batches 8 \
        2>&1 | tee "$OUT/gpu_memory_7b.txt" | grep "^[|{]"
fi
if part bench; then
    stamp "tunewise advise + bench --device cuda (random SmolLM2-135M shape, banking sample)"
    # SmolLM2-135M's shape (finetune_gpu_memory.SHAPES), random weights: the real ones do not travel
    timeout 60 python3 - <<'EOF' || exit 1
import sys

import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

sys.path.insert(0, "benchmarks")
from finetune_gpu_memory import SHAPES

tokenizer = AutoTokenizer.from_pretrained(".gpu/smollm2-tokenizer")
config = LlamaConfig(**{**SHAPES["135m"], "vocab_size": len(tokenizer)},
                     max_position_embeddings=8192, bos_token_id=tokenizer.bos_token_id,
                     eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
torch.manual_seed(0)
LlamaForCausalLM(config).save_pretrained("/tmp/random-smollm2-135m")
tokenizer.save_pretrained("/tmp/random-smollm2-135m")
EOF
    timeout -k 5 30 python3 -m advisor.cli advise --data bench/samples/banking_support --no-probe \
        --no-domain --json > "$OUT/advise.json" 2>&1
    python3 -c "import json; d = json.load(open('$OUT/advise.json')); print([(r['strategy'], \
        r['estimate']['peak_memory_gb'], r['estimate']['time_s']) \
        for r in d['ranked']])" || head -c 600 "$OUT/advise.json"
    timeout -k 5 240 python3 -m advisor.cli bench --data bench/samples/banking_support \
        --strategies "$BENCH_STRATEGIES" --model /tmp/random-smollm2-135m --encoder tiny-bert \
        --device cuda --max-train-rows 120 --out /tmp/gpu-runs --plain 2>&1 | tail -20
    run=$(ls -d /tmp/gpu-runs/*/ 2>/dev/null | tail -1)
    [ -n "$run" ] && cp "$run/results.jsonl" "$OUT/bench_results.jsonl" \
        && cp "$run/report.html" "$OUT/bench_report.html" 2>/dev/null
fi

stamp done
