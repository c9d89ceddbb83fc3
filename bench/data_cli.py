"""`tunewise data check PATH`: check a dataset and print its profile.

    tunewise data check tickets.csv
    tunewise data check bench/samples/squad_mini --json
    tunewise data check pairs.parquet --task preference --prompt-col query
    tunewise data check train.csv --test test.csv --text-col body --label-col team
    tunewise data check tickets.csv --domain    # + how far the inputs are from general text

Exit 0 when the data is usable (warnings allowed), 2 with a one-line message when it is not.
"""

from __future__ import annotations

import argparse
import json

from bench.cli_options import add_deprecated_alias
from bench.data import ROLE_SYNONYMS, load_task_data, role_flag
from strategies.base import TASK_KINDS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="a CSV/TSV/JSON/JSONL/Parquet file, a folder with train.* "
                        "[test.* corpus.*] files, or a datasets.save_to_disk folder")
    parser.add_argument("--task", choices=TASK_KINDS, help="the task kind (default: detected "
                        "from the column names)")
    parser.add_argument("--test", dest="test_path", metavar="PATH",
                        help="a separate test file (else a test split is carved)")
    parser.add_argument("--corpus", dest="corpus_path", metavar="PATH",
                        help="documents for RAG: a folder of .txt/.md or a file with a text column")
    columns = parser.add_argument_group("column names (override the detection)")
    for role, synonyms in ROLE_SYNONYMS.items():
        columns.add_argument(role_flag(role), dest=f"{role}_col", metavar="COLUMN",
                             help=f"the {role} column (detected: {'/'.join(synonyms)})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split (default 0)")
    parser.add_argument("--test-size", type=float, default=0.2,
                        help="share of rows held out for test when no test file is given")
    parser.add_argument("--val-size", type=float, default=0.1,
                        help="share of rows for validation (of train when a test file is given)")
    parser.add_argument("--max-train-rows", type=int, default=None, metavar="N",
                        help="cap the train split (stratified), as `bench` does")
    parser.add_argument("--model", dest="model_name", default=None,
                        help="count lengths in this model's tokens (tokenizer only; default: "
                        "a word count); with --domain, the model measured (default "
                        "smollm2-135m)")
    parser.add_argument("--domain", action="store_true",
                        help="also measure how far the inputs lie from general English text: the "
                        "model's perplexity on a sample of the train inputs vs on bundled "
                        "Wikipedia passages, and the encoder's similarity to them (loads both "
                        "models; seconds on a CPU)")
    parser.add_argument("--encoder", dest="encoder_name", default=None, metavar="MODEL",
                        help="the sentence encoder --domain uses (default minilm-l6)")
    parser.add_argument("--json", action="store_true", help="print the profile as JSON")
    add_deprecated_alias(parser, "--max-rows", "--max-train-rows")


def column_overrides(args: argparse.Namespace) -> dict[str, str]:
    """{role: column} from the --<role>-col flags that were given (also used by `bench`)."""
    return {role: getattr(args, f"{role}_col") for role in ROLE_SYNONYMS
            if getattr(args, f"{role}_col", None)}


def run(args: argparse.Namespace) -> int:
    from bench.models import check_model_option

    for option, name in (("--model", args.model_name), ("--encoder", args.encoder_name)):
        check_model_option(option, [name] if name else [])  # before the data is read
    loaded = load_task_data(args.path, task=args.task, test_path=args.test_path,
                            corpus_path=args.corpus_path, columns=column_overrides(args),
                            seed=args.seed, test_size=args.test_size, val_size=args.val_size,
                            max_rows=args.max_train_rows, model_name=args.model_name)
    if args.domain:
        from bench.domain import measure_domain  # torch and the models: only when asked
        from bench.models import DEFAULT_ENCODER, DEFAULT_LLM

        loaded.profile["domain"] = measure_domain(loaded.split, args.model_name or DEFAULT_LLM,
                                                  args.encoder_name or DEFAULT_ENCODER,
                                                  seed=args.seed)
    if args.json:
        print(json.dumps(loaded.profile, indent=2, ensure_ascii=False))
    else:
        print_profile(loaded.profile)
    return 0


def print_profile(profile: dict) -> None:
    """The profile as rich tables: overview, labels, warnings."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(highlight=False)
    overview = Table(title=f"Data check: {profile['path']}", show_header=False,
                     title_justify="left")
    overview.add_column(style="bold")
    overview.add_column()
    splits = profile["splits"]
    lengths = profile["token_length"]
    unit = "tokens" if profile["token_counter"] != "words" else "words"
    rows = [
        ("task", profile["task"]),
        ("rows", f"{profile['rows']:,}"),
        ("columns", ", ".join(f"{role} <- {column}"
                              for role, column in profile["column_map"].items())),
        ("format", f"{profile['format']}" + (f" ({profile['encoding']})"
                                              if profile.get("encoding") else "")),
        ("splits", f"train {splits['train']:,} / validation {splits['validation']:,} / "
                   f"test {splits['test']:,} ({profile['split_source']}, seed {profile['seed']})"),
        (f"length ({unit})", f"p50 {lengths['p50']}  p90 {lengths['p90']}  "
                             f"p99 {lengths['p99']}  max {lengths['max']}"),
        ("duplicates", str(profile["duplicates"])),
        ("leakage", f"{profile['leakage']} test rows also in train"),
        ("corpus", f"{profile['corpus_docs']} documents" if profile["has_corpus"] else "none"),
        ("data hash", profile["data_hash"][:16]),
        ("checked in", f"{profile['check_seconds']:.2f} s"),
    ]
    for name, value in rows:
        overview.add_row(name, Text(str(value)))
    console.print(overview)
    if profile.get("labels"):
        labels = Table(title="Labels", title_justify="left")
        labels.add_column("label")
        labels.add_column("as said in prompts")
        labels.add_column("rows", justify="right")
        for label, count in profile["labels"].items():
            labels.add_row(Text(label), Text(profile["label_names"].get(label, label)),
                           str(count))
        console.print(labels)
    if profile.get("domain"):
        console.print(domain_table(profile["domain"]))
    for note in profile["notes"]:
        console.print(Text(f"note: {note}", style="dim"))
    for warning in profile["warnings"]:
        console.print(Text(f"warning: {warning}", style="yellow"))
    if not profile["warnings"]:
        console.print(Text("no warnings", style="green"))


def domain_table(domain: dict):
    """The domain measurement (bench.domain) as a table: each measure beside its reference."""
    from rich.table import Table

    table = Table(title=f"Domain: {domain['rows']} train inputs vs general text (bundled "
                        f"Wikipedia passages cut to {domain.get('reference_tokens', '?')} "
                        f"tokens), {domain['seconds']:.1f} s", title_justify="left")
    table.add_column("measure")
    table.add_column("your inputs", justify="right")
    table.add_column("general text", justify="right")
    table.add_column("reads")
    table.add_row(f"perplexity ({domain['model']})", f"{domain['perplexity']:.1f}",
                  f"{domain['reference_perplexity']:.1f}",
                  f"ratio {domain['perplexity_ratio']:.2f}; over 1: more surprising than "
                  "general text")
    table.add_row(f"similarity ({domain['encoder']})", f"{domain['similarity_to_reference']:.3f}",
                  f"{domain['reference_self_similarity']:.3f}",
                  "cosine to the general centroid (general: its own spread)")
    return table
