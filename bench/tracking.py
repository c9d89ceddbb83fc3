"""`--report-to tensorboard|mlflow`: the Hugging Face Trainers log to files inside the run folder.

    runs/<id>/tracking/tensorboard/<candidate>/   TensorBoard event files (`tensorboard --logdir`)
    runs/<id>/tracking/mlruns/                     an MLflow file store (`mlflow ui --backend-store-uri`)

Off by default. Nothing here starts a server or reaches the network: the child sets the
environment the Trainers' own callbacks read (transformers' TensorBoardCallback and
MLflowCallback) before the strategy runs, and strategies.trackers hands the choice to every
TrainingArguments the strategies build. The report links the folder.
"""

from __future__ import annotations

import json
from pathlib import Path

from bench.journal import safe_name

TRACKING_DIR = "tracking"  # inside the run folder
REPORT_TO_ENV = "TUNEWISE_REPORT_TO"  # strategies.trackers reads it (kept import-free there)
PACKAGES = {"tensorboard": "tensorboard", "mlflow": "mlflow-skinny"}


def tracker_env(report_to: str, run_dir: str | Path, run_id: str, candidate: str,
                seed: int, several_seeds: bool) -> dict[str, str]:
    """The environment a candidate's child runs with; {} when nothing is tracked."""
    if report_to in (None, "", "none"):
        return {}
    env = {REPORT_TO_ENV: report_to}
    root = Path(run_dir).resolve() / TRACKING_DIR
    if report_to == "tensorboard":
        folder = root / "tensorboard" / safe_name(candidate)
        if several_seeds:
            folder = folder / f"seed{seed}"
        env["TENSORBOARD_LOGGING_DIR"] = str(folder)
    elif report_to == "mlflow":
        env["MLFLOW_TRACKING_URI"] = (root / "mlruns").as_uri()
        # MLflow 3 keeps its file store (in "maintenance mode") behind this opt-in; a file store
        # needs no database package and no server, which is the point here
        env["MLFLOW_ALLOW_FILE_STORE"] = "true"
        env["MLFLOW_EXPERIMENT_NAME"] = run_id
        env["MLFLOW_TAGS"] = json.dumps({"tunewise.candidate": candidate,
                                         "tunewise.seed": str(seed)})
    return env


def missing_package(report_to: str) -> str | None:
    """The pip package --report-to needs that is not installed, else None."""
    import importlib.util

    module = {"tensorboard": "tensorboard", "mlflow": "mlflow"}.get(report_to)
    if module is None or importlib.util.find_spec(module) is not None:
        return None
    return PACKAGES[report_to]
