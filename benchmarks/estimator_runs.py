"""The estimator's held-out check, end to end: build the slices, run the benches, print the table.

    python benchmarks/estimator_runs.py                 # slices, benches (one at a time), table
    python benchmarks/estimator_runs.py --dry-run       # the slices and the commands, no bench
    python benchmarks/estimator_runs.py --table-only    # the table of runs already under --out
    python benchmarks/estimator_runs.py --only uci_sentiment,squad_b16   # some benches only

Held out (the estimator was not fitted to them): slices of four datasets of the shared data
folder (--data-root, default ../shared/data beside the repository) that the project does not
bundle: uci_sentiment (400 train / 64 test rows, 2 labels), banking77_12 (12 intents the bundled
banking sample lacks, 30 train / 6 test rows each), pubmedqa16 (120 train / 16 test questions,
the 136 abstracts they come from as the corpus) and squad_b16 (other rows than squad_mini:
16 test questions, the train questions on their paragraphs, those paragraphs + 60 others).
Fit set: the bundled samples the estimator's constants were fitted to, banking_support and
squad_mini16 (squad_mini with its first 16 test rows). The slices are deterministic (fixed
strides, no sampling) and are the ones of the 2026-12-03 runs in benchmarks/RESULTS.md.

Every bench: quick preset, bundled models, training capped at 6 optimizer steps (memory peaks in
the first steps; `--set max_steps=6`, encoder-ft one epoch), niced, one at a time; qa at batch
4 (the held-out qa slices also at 16 new tokens), as on 2026-12-03, so the tables compare;
`--no-forgetting` (that probe came later: it is outside a candidate's time but inside its
process's sampled memory). Then
`benchmarks/estimator.py --markdown` over the held-out runs (and over the fit runs apart).

Duration on an idle 2-core CPU: 16.6 min (2026-12-03, benchmarks/RESULTS.md), about 60 % of it
the held-out benches (`--only uci_sentiment,banking77_12,pubmedqa16,squad_b16` skips the fit
set). The machine probes (FLOP/s, copy
bandwidth) are measured again at the start, so the estimates are of the idle machine
(--keep-probes keeps the cached ones).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_ROOT = ROOT.parent / "shared" / "data"
DEFAULT_OUT = Path("/tmp/tunewise_estimator_runs")
SAMPLES = ROOT / "bench" / "samples"

CLASSIFICATION = "majority,zero-shot,few-shot,knn,transfer,encoder-ft,rag,lora"
QA_FIT = "zero-shot,few-shot,rag,lora,lora+rag"
QA_HELD_OUT = "zero-shot,rag,lora,lora+rag"  # few-shot is measured on the classification data
CAPPED = ["--set", "max_steps=6"]
CLASSIFICATION_SETS = CAPPED + ["--set", "encoder-ft.epochs=1"]
QA_FIT_SETS = CAPPED + ["--set", "batch_size=4"]
QA_HELD_OUT_SETS = QA_FIT_SETS + ["--set", "max_new_tokens=16"]

# The banking_support sample's intents: banking77_12 takes others.
BUNDLED_INTENTS = frozenset({"card_arrival", "change_pin", "exchange_rate", "lost_or_stolen_card",
                             "top_up_failed", "transfer_not_received_by_recipient"})

Rows = list[dict[str, Any]]
Slice = dict[str, Rows]  # file name -> rows


def qa_row(row: dict[str, Any]) -> dict[str, Any]:
    return {"question": row["question"], "context": row["context"], "answer": row["answer"]}


def uci_sentiment(train: Rows, test: Rows) -> Slice:
    """Every 6th train row, the first 64 test rows."""
    keep = lambda r: {"text": r["text"], "label": r["label"]}  # noqa: E731
    return {"train.jsonl": [keep(r) for r in train[::6]],
            "test.jsonl": [keep(r) for r in test[:64]]}


def banking77_12(train: Rows, test: Rows) -> Slice:
    """12 intents the bundled sample lacks (every 6th of the others, in first-seen order),
    30 train and 6 test rows each."""
    others = [label for label in dict.fromkeys(r["label"] for r in train)
              if label not in BUNDLED_INTENTS]
    labels = others[::6][:12]

    def take(rows: Rows, per_label: int) -> Rows:
        return [r for label in labels for r in [x for x in rows if x["label"] == label][:per_label]]

    return {"train.jsonl": take(train, 30), "test.jsonl": take(test, 6)}


def pubmedqa16(train: Rows, test: Rows, corpus: Rows) -> Slice:
    """The first 120 train and 16 test questions; the corpus: the abstracts of the first 120
    train and 32 test questions (those of the 2026-12-03 pubmedqa slice)."""
    train, test = train[:120], test[:32]
    by_id = {d["id"]: d for d in corpus}
    return {"train.jsonl": [qa_row(r) for r in train],
            "test.jsonl": [qa_row(r) for r in test[:16]],
            "corpus.jsonl": [{"id": r["id"], "text": by_id[r["id"]]["text"]}
                             for r in train + test if r["id"] in by_id]}


def squad_b16(train: Rows, test: Rows, corpus: Rows) -> Slice:
    """Test rows 5, 15, 25, ... (squad_mini took 0, 10, 20, ...), the first 40 of them; the train
    questions on their paragraphs (up to 120); 16 of the test rows; the corpus: those paragraphs
    and 60 others (every 16th from the 4th)."""
    test = test[5::10][:40]
    paragraphs = {r["context_id"] for r in test}
    train = [r for r in train if r["context_id"] in paragraphs][:120]
    others = [d for d in corpus if d["id"] not in paragraphs][3::16][:60]
    return {"train.jsonl": [qa_row(r) for r in train],
            "test.jsonl": [qa_row(r) for r in test[:16]],
            "corpus.jsonl": [{"id": d["id"], "text": d["text"]}
                             for d in corpus if d["id"] in paragraphs]
            + [{"id": d["id"], "text": d["text"]} for d in others]}


# name -> (group, source folder under the data root, its files, how it is cut); the rows are
# written back as JSON lines
SLICES: dict[str, tuple[str, str, tuple[str, ...], Callable[..., Slice]]] = {
    "uci_sentiment": ("runs", "uci_sentiment_sentences", ("train", "test"), uci_sentiment),
    "banking77_12": ("runs", "banking77", ("train", "test"), banking77_12),
    "pubmedqa16": ("runs", "pubmedqa", ("train", "test", "corpus"), pubmedqa16),
    "squad_b16": ("runs", "squad_v1_1_dev_subset", ("train", "test", "corpus"), squad_b16),
}
# The fit set: bundled samples, copied line for line; squad_mini16 keeps the first 16 test rows
# (generation is slow on a CPU).
FIT_SET: dict[str, tuple[str, dict[str, int | None]]] = {
    "banking_support": ("banking_support", {"train.jsonl": None, "test.jsonl": None}),
    "squad_mini16": ("squad_mini", {"train.jsonl": None, "test.jsonl": 16,
                                    "corpus.jsonl": None}),
}
BENCHES = [*SLICES, *FIT_SET]


def bench_arguments(name: str, data: Path) -> list[str]:
    """--strategies, --set and --corpus of one bench, as the 2026-12-03 runs had them."""
    corpus = ["--corpus", str(data / "corpus.jsonl")] if (data / "corpus.jsonl").exists() else []
    if name in ("pubmedqa16", "squad_b16"):
        return ["--strategies", QA_HELD_OUT, *QA_HELD_OUT_SETS, *corpus]
    if name == "squad_mini16":
        return ["--strategies", QA_FIT, *QA_FIT_SETS, *corpus]
    return ["--strategies", CLASSIFICATION, *CLASSIFICATION_SETS]


def read_jsonl(path: Path) -> Rows:
    if not path.is_file():
        raise SystemExit(f"{path} is missing: is --data-root the shared data folder?")
    return [json.loads(line) for line in path.read_text().split("\n") if line.strip()]


def build_slice(name: str, data_root: Path, out: Path) -> Path:
    """Write bench `name`'s data under out/data/<name> and return that folder."""
    target = out / "data" / name
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    if name in FIT_SET:
        folder, files = FIT_SET[name]
        for file, keep in files.items():
            lines = [line for line in (SAMPLES / folder / file).read_text().split("\n")
                     if line.strip()]
            (target / file).write_text("".join(line + "\n" for line in lines[:keep]))
        return target
    _, folder, files, cut = SLICES[name]
    written = cut(*(read_jsonl(data_root / folder / f"{f}.jsonl") for f in files))
    for file, rows in written.items():
        (target / file).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return target


def bench_command(name: str, data: Path, out: Path) -> list[str]:
    group = "fit" if name in FIT_SET else "runs"
    return [sys.executable, "-m", "advisor.cli", "bench", "--data", str(data),
            *bench_arguments(name, data), "--preset", "quick", "--timeout", "1800",
            # the forgetting probe runs after a trained LM's own work, outside its time, but in
            # its process's sampled memory; the 2026-12-03 runs predate it
            "--no-forgetting", "--no-report", "--plain", "--out", str(out / group / name)]


def run_bench(command: list[str], log: Path) -> int:
    """One bench, niced, its output in `log`; the load average beside its start and end."""
    log.parent.mkdir(parents=True, exist_ok=True)
    print(f"{time.strftime('%H:%M:%S')} load {os.getloadavg()[0]:.1f}: "
          f"{' '.join(command[1:])}", flush=True)
    started = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with open(log, "w") as handle:
        rc = subprocess.run(["nice", "-n", "10", *command], cwd=ROOT, env=env, stdout=handle,
                            stderr=subprocess.STDOUT, check=False).returncode
    print(f"{time.strftime('%H:%M:%S')} rc {rc}, {time.perf_counter() - started:.0f} s, "
          f"load {os.getloadavg()[0]:.1f} (log {log})", flush=True)
    return rc


def measure_machine() -> None:
    """The estimator's machine probes, measured afresh at the start (on the idle machine the
    check is meant for) and cached where the estimates of the table read them."""
    sys.path.insert(0, str(ROOT))
    from advisor.estimate_machine import cpu_bandwidth, cpu_flops

    flops, _ = cpu_flops(refresh=True)
    bandwidth, source = cpu_bandwidth(refresh=True)
    print(f"machine: {flops:.3g} effective FLOP/s, {bandwidth:.3g} B/s copy bandwidth "
          f"({source})", flush=True)


def table(folders: list[Path]) -> None:
    folders = [f for f in folders if f.exists()]
    if folders:
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "estimator.py"), "--markdown",
                        *map(str, folders)], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                       check=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT,
                        help="the shared data folder (default ../shared/data)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"slices, run folders and logs (default {DEFAULT_OUT})")
    parser.add_argument("--only", default=",".join(BENCHES),
                        help=f"comma-separated benches (default all: {', '.join(BENCHES)})")
    parser.add_argument("--dry-run", action="store_true",
                        help="build the slices and print the commands; run nothing")
    parser.add_argument("--table-only", action="store_true",
                        help="print the table of the runs already under --out")
    parser.add_argument("--keep-probes", action="store_true",
                        help="keep the cached FLOP/s and bandwidth (default: measure them again "
                        "before the benches)")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        raise SystemExit(f"unknown bench {', '.join(unknown)}: one of {', '.join(BENCHES)}")
    if not args.table_only:
        if not args.dry_run and not args.keep_probes:
            measure_machine()
        failed = []
        for name in names:
            data = build_slice(name, args.data_root, args.out)
            command = bench_command(name, data, args.out)
            if args.dry_run:
                print(" ".join(command))
            elif run_bench(command, args.out / "logs" / f"{name}.log") != 0:
                failed.append(name)
        if args.dry_run:
            return 0
        if failed:
            print(f"benches that failed (see their logs): {', '.join(failed)}")
    print("\n## Held out (not fitted to)\n", flush=True)
    table([args.out / "runs"])
    print("\n## Fit set (the bundled samples)\n", flush=True)
    table([args.out / "fit"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
