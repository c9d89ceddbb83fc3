"""OpenMP wait policy and torch threads: label scoring time under each setting.

    python benchmarks/omp_wait.py            # smollm2-135m, 16 prompts, 4 settings
    python benchmarks/omp_wait.py --quick    # tiny-llama

Each setting runs in a fresh process (OMP_WAIT_POLICY is read when torch loads libgomp):
torch threads 2 / 1 x OMP_WAIT_POLICY default (active spinning) / PASSIVE. On a machine with
more runnable threads than cores, spinning threads slow everyone; bench/child.py therefore sets
PASSIVE. Prints seconds per setting and the load average.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

CHILD = """
import json, os, sys, time, torch
from bench.models import load_model
from strategies.scoring import label_logprobs
torch.set_num_threads(int(sys.argv[1]))
model, tok = load_model(sys.argv[2]); model.eval()
rows = [json.loads(l) for l in open("bench/samples/banking_support/test.jsonl")][::8][:16]
labels = sorted({r["label"] for r in rows})
prompts = [f"Classify the banking question.\\nQuestion: {r['text']}\\nIntent:" for r in rows]
label_logprobs(model, tok, prompts[:2], labels, batch_size=2)
start = time.perf_counter()
label_logprobs(model, tok, prompts, labels, batch_size=8)
print(f"{time.perf_counter() - start:.2f}")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    model = "tiny-llama" if args.quick else "smollm2-135m"
    for threads in ("2", "1"):
        for policy in ("", "PASSIVE"):
            env = {**os.environ, "HF_HUB_OFFLINE": "1"}
            env.pop("OMP_WAIT_POLICY", None)
            if policy:
                env["OMP_WAIT_POLICY"] = policy
            load = os.getloadavg()[0]
            out = subprocess.run([sys.executable, "-c", CHILD, threads, model], env=env,
                                 capture_output=True, text=True)
            seconds = out.stdout.strip().splitlines()[-1] if out.returncode == 0 else "failed"
            print(f"threads {threads}, OMP_WAIT_POLICY {policy or 'default':<8}: {seconds} s "
                  f"(load average {load:.1f})")


if __name__ == "__main__":
    main()
