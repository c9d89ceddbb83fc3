"""Run config files: one YAML file per run, read by `tunewise bench --config FILE`.

    tunewise bench --config run.yaml                       # everything from the file
    tunewise bench --config run.yaml --preset full         # a flag given on the command line wins
    tunewise bench --config runs/20261203-101500-ab12      # rerun a run folder's config.yaml

    data: tickets.csv             # a list of paths: multi-task, as --data given again
    columns: {text: body, label: team}
    strategies: [majority, zero-shot, lora]
    model: smollm2-135m
    preset: quick
    set: {lora.r: 16, epochs: 2}  # --set; nested {lora: {r: 16}} or ["lora.r=16"] work too
    seeds: 3
    timeout: 1800

The keys are bench's long options without the dashes (`max-train-rows` or `max_train_rows`),
looked up in bench's own argument parser, so an option added to `tunewise bench` is a config key
at once; `columns` and `set` are the two keys shaped as mappings. Each value is checked against
its option (type, choices) with the file and key in the message; an unknown key gets the nearest
known one. Relative paths are read from the config file's folder when they exist there (so a
config saved beside its data works from anywhere), else as given.

The other direction: `plan_config(plan, parser)` turns a BenchPlan (what a run asks for) into the same
file, through the plan's bench arguments (reports.reproduce.plan_arguments, the reproduce
command). That is what a run folder stores as config.yaml, what the TUI's "Save config" writes
and what `tunewise advise --write-config` writes: one format, read by one loader.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
from pathlib import Path
from typing import Any, Callable

from advisor.yaml_files import did_you_mean, read_yaml
from bench.errors import TunewiseError
from reports.reproduce import set_text  # the --set text a value reads back from

CONFIG_NAME = "config.yaml"  # the resolved config in each run folder
# Options that belong to one invocation, not to a run: refused in a file, never written.
PER_INVOCATION = ("help", "config", "resume")
# How a run is shown, not what it is: accepted in a file, never written to one.
DISPLAY_ONLY = ("json", "plain")
_PATH_METAVARS = ("PATH", "FILE", "TOML", "DIR")
HEADER = ("# A tunewise run config. Run it with:\n#   tunewise bench --config {name}\n"
          "# A bench flag given on the command line wins over the file; the keys are the options\n"
          "# of `tunewise bench --help` without the dashes.\n")


# ------------------------------------------------------------------------ marking the defaults


class Default:
    """An option's default, marked so that a config file can tell it from a value the user
    typed (a flag given on the command line wins over the file, even when it equals the
    default). `resolve` replaces every one with the file's value or the plain default."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __bool__(self) -> bool:  # `if args.data:` before resolving reads as the default would
        return bool(self.value)

    def __repr__(self) -> str:
        return repr(self.value)

    def __str__(self) -> str:  # `%(default)s` in a help text
        return str(self.value)


def mark_defaults(parser: argparse.ArgumentParser) -> None:
    """Wrap the default of every single-valued option in `Default` (list-valued ones, such as
    --set, take the file's items first and the command line's after them instead)."""
    for action in parser._actions:
        if action.dest in PER_INVOCATION or action.default is argparse.SUPPRESS:
            continue
        if not isinstance(action, argparse._AppendAction):
            action.default = Default(action.default)


def _plain_default(action: argparse.Action) -> Any:
    value = action.default.value if isinstance(action.default, Default) else action.default
    if isinstance(value, str) and callable(action.type):
        value = action.type(value)  # what argparse does to a string default
    return value


# ------------------------------------------------------------------------ the keys


@dataclasses.dataclass
class Options:
    """bench's options by config key: each long option without dashes and its destination."""

    by_key: dict[str, argparse.Action]
    actions: list[argparse.Action]  # in --help order, without hidden aliases and --help

    @classmethod
    def of(cls, parser: argparse.ArgumentParser) -> "Options":
        actions = [a for a in parser._actions if a.option_strings
                   and a.help is not argparse.SUPPRESS and a.dest not in PER_INVOCATION]
        by_key: dict[str, argparse.Action] = {}
        for action in actions:
            for flag in action.option_strings:
                if flag.startswith("--"):
                    by_key[_key(flag)] = action
            by_key.setdefault(action.dest, action)
        return cls(by_key, actions)

    def known(self) -> list[str]:
        """The keys a user sees: the long options, plus `columns` and `set`."""
        keys = [_key(max(a.option_strings, key=len)) for a in self.actions]
        return [k for k in keys if not k.endswith("_col") and k != "set"] + ["columns", "set"]


def _key(text: str) -> str:
    return str(text).lstrip("-").replace("-", "_")


# ------------------------------------------------------------------------ reading a file


def read_config(path: str | Path, parser: argparse.ArgumentParser) -> tuple[dict[str, Any], Path]:
    """The raw mapping of a config file (or of a run folder's config.yaml, else its stored
    plan) and the folder its relative paths are read from."""
    path = Path(path).expanduser()
    if path.is_dir():
        if (path / CONFIG_NAME).is_file():
            path = path / CONFIG_NAME
        elif (path / "manifest.json").is_file():
            return _config_of_run_folder(path, parser), Path.cwd()
        else:
            raise TunewiseError(f"--config {path}: a folder without {CONFIG_NAME} or "
                                "manifest.json (give a config file or a run folder)")
    raw = read_yaml(path, "config file")
    if raw is None:
        return {}, path.parent
    if not isinstance(raw, dict):
        raise TunewiseError(f"{path}: expected a mapping of options (data: ..., strategies: "
                            f"...), got {type(raw).__name__}")
    return raw, path.parent


def _config_of_run_folder(run_dir: Path, parser: argparse.ArgumentParser) -> dict[str, Any]:
    """An older run folder (no config.yaml): the plan its manifest stored."""
    from bench import journal

    try:
        manifest = journal.read_json(run_dir / journal.MANIFEST)
    except (OSError, ValueError) as exc:
        raise TunewiseError(f"cannot read {run_dir}/manifest.json: {exc}") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("plan"), dict):
        raise TunewiseError(f"{run_dir}/manifest.json stores no plan to rerun")
    return plan_config(manifest["plan"], parser, manifest)


def resolve(args: argparse.Namespace, parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Fill `args` in place: the config file's value (args.config) where the command line gave
    none, else the option's default. Idempotent."""
    if getattr(args, "config_resolved", False):
        return args
    options = Options.of(parser)
    if getattr(args, "config", None):
        raw, base = read_config(args.config, parser)
        apply_config(args, raw, options, source=str(args.config), base=base)
    for action in parser._actions:
        if isinstance(getattr(args, action.dest, None), Default):
            setattr(args, action.dest, _plain_default(action))
    args.config_resolved = True
    return args


def apply_config(args: argparse.Namespace, raw: dict[str, Any], options: Options, *,
                 source: str, base: Path) -> None:
    """Each key of the file onto `args`, where the command line left the default."""
    for raw_key, value in raw.items():
        key = _key(raw_key)
        where = f"{source}: {raw_key}"
        if value is None:
            continue  # `timeout:` with nothing: the default
        if key in PER_INVOCATION:
            raise TunewiseError(f"{where}: not a config key (give --{key.replace('_', '-')} on "
                                "the command line)")
        if key == "columns":
            _apply_columns(args, value, options, where)
        elif key in ("set", "sets"):
            args.sets = _set_items(value, where) + list(args.sets or [])
        elif key == "data":
            _apply_data(args, value, options.by_key["data"], where, base)
        elif key in options.by_key:
            _apply_option(args, options.by_key[key], value, where, base)
            if key in ("model", "encoder"):
                _check_model_names(value, where)
        else:
            raise TunewiseError(f"{source}: unknown key {raw_key!r}"
                                f"{did_you_mean(key, options.known())}; keys: "
                                f"{', '.join(options.known())}")


def _check_model_names(value: Any, where: str) -> None:
    """`model` / `encoder` in a file: each a known name, a hub id or a folder; a misspelt name
    gets the closest known one, with the file and key (the run checks the flags the same way)."""
    from bench.models import check_model_option
    from bench.plan import model_names

    check_model_option(where, model_names(value))


def _given(args: argparse.Namespace, dest: str) -> bool:
    """Did the command line give this option (its value is no longer the marked default)?"""
    return not isinstance(getattr(args, dest, None), Default)


def _apply_option(args, action: argparse.Action, value: Any, where: str, base: Path) -> None:
    """Check the file's value (even when a flag overrides it), then set it unless one does."""
    if isinstance(action, argparse._AppendAction):
        items = value if isinstance(value, list) else [value]
        converted = [_scalar(action, item, where, base) for item in items]
        setattr(args, action.dest, converted + list(getattr(args, action.dest) or []))
        return
    converted = _option_value(action, value, where, base)
    if not _given(args, action.dest):  # else the command line wins
        setattr(args, action.dest, converted)


def _option_value(action: argparse.Action, value: Any, where: str, base: Path) -> Any:
    if action.nargs == 0:  # a switch: --trust-remote-code, --no-report
        if not isinstance(value, bool):
            raise TunewiseError(f"{where}: expected true or false, got {value!r}")
        return (not value) if isinstance(action, argparse._StoreFalseAction) else value
    if isinstance(value, dict) and action.metavar == "JSON":
        value = json.dumps(value)
    elif isinstance(value, list):
        if not _takes_a_list(action):
            raise TunewiseError(f"{where}: expected one value, got a list")
        value = ",".join(str(_scalar(action, item, where, base, check_choices=False))
                         for item in value)
    return _scalar(action, value, where, base)


def _scalar(action: argparse.Action, value: Any, where: str, base: Path, *,
            check_choices: bool = True) -> Any:
    """One value converted to the option's type, with the file and key in every message."""
    kind = action.type
    if isinstance(value, (dict, list)) or isinstance(value, bool):
        expected = {int: "a whole number", float: "a number"}.get(kind, "text")
        raise TunewiseError(f"{where}: expected {expected}, got {value!r}")
    if kind in (None, str):
        converted: Any = str(value)
    elif kind is int and isinstance(value, float) and not value.is_integer():
        raise TunewiseError(f"{where}: expected a whole number, got {value!r}")
    else:
        try:
            converted = kind(value if kind in (int, float) else str(value))
        except (TypeError, ValueError, argparse.ArgumentTypeError):
            expected = {int: "a whole number", float: "a number"}.get(kind, "a valid value")
            raise TunewiseError(f"{where}: expected {expected}, got {value!r}") from None
    if check_choices and action.choices is not None and converted not in action.choices:
        choices = [str(c) for c in action.choices]
        raise TunewiseError(f"{where}: {converted!r} is not one of {', '.join(choices)}"
                            f"{did_you_mean(str(converted), choices)}")
    if isinstance(converted, str) and _is_path(action):
        converted = _relative_to(base, converted)
    return converted


def _takes_a_list(action: argparse.Action) -> bool:
    """A comma-separated option (--strategies A,B; --learning-curve N,N,...): a YAML list is
    joined with commas."""
    return "," in str(action.metavar or "") or "comma-separated" in str(action.help or "")


def _is_path(action: argparse.Action) -> bool:
    return any(kind in str(action.metavar or "") for kind in _PATH_METAVARS)


def _relative_to(base: Path, value: str) -> str:
    """A relative path as seen from the config file's folder, when it exists there."""
    path = Path(value).expanduser()
    if path.is_absolute() or base == Path.cwd():
        return value
    beside = base / path
    return str(beside) if beside.exists() else value


def _apply_data(args, value: Any, action: argparse.Action, where: str, base: Path) -> None:
    """`data: PATH` or a list of paths (the further ones: multi-task, as --data again)."""
    if _given(args, "data"):
        return  # --data on the command line replaces the file's data, all of it
    paths = value if isinstance(value, list) else [value]
    if not paths:
        raise TunewiseError(f"{where}: expected a path or a list of paths, got []")
    converted = [_scalar(action, path, where, base) for path in paths]
    args.data = converted[0]
    args.more_data = converted[1:] + list(getattr(args, "more_data", None) or [])


def _apply_columns(args, value: Any, options: Options, where: str) -> None:
    """`columns: {text: body, label: team}`: the --<role>-col options."""
    from bench.data import ROLE_SYNONYMS

    if not isinstance(value, dict):
        raise TunewiseError(f"{where}: expected a mapping of role to column, e.g. "
                            "{text: body, label: team}")
    for role, column in value.items():
        if role not in ROLE_SYNONYMS:
            raise TunewiseError(f"{where}: unknown role {role!r}"
                                f"{did_you_mean(str(role), list(ROLE_SYNONYMS))}; roles: "
                                f"{', '.join(ROLE_SYNONYMS)}")
        action = options.by_key[f"{role}_col"]
        _apply_option(args, action, column, f"{where}.{role}", Path.cwd())


def _set_items(value: Any, where: str) -> list[str]:
    """--set items from `{lora.r: 16, epochs: 2}`, `{lora: {r: 16}}` or ["lora.r=16"]."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        if not all(isinstance(item, str) for item in value):
            raise TunewiseError(f"{where}: a list of KEY=VALUE texts, e.g. [\"lora.r=16\"]")
        return list(value)
    if not isinstance(value, dict):
        raise TunewiseError(f"{where}: expected a mapping, e.g. {{lora.r: 16, epochs: 2}}")
    items = []
    for key, item in value.items():
        if isinstance(item, dict):  # {lora: {r: 16}}
            items += [f"{key}.{field}={set_text(v)}" for field, v in item.items()]
        else:
            items.append(f"{key}={set_text(item)}")
    return items


# ------------------------------------------------------------------------ writing a file


def config_from_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> dict[str, Any]:
    """The resolved options of a bench invocation as a config mapping: every option that has a
    value, in --help order, with the columns and --set items as mappings."""
    options = Options.of(parser)
    config: dict[str, Any] = {}
    columns: dict[str, str] = {}
    for action in options.actions:
        value = getattr(args, action.dest, None)
        if isinstance(value, Default):
            value = _plain_default(action)
        key = _key(max(action.option_strings, key=len))
        if value is None or value is False or value == [] or key in DISPLAY_ONLY:
            continue
        if key.endswith("_col"):
            config.setdefault("columns", columns)  # where the first column option stands
            columns[key[: -len("_col")]] = value
        elif key == "set":
            config["set"] = _set_mapping(value)
        elif key == "data":
            more = list(getattr(args, "more_data", None) or [])
            config["data"] = [value, *more] if more else value
        elif action.metavar == "JSON" and isinstance(value, str):
            config[key] = json.loads(value)
        elif isinstance(value, str) and _takes_a_list(action):
            config[key] = _list_value(value)
        else:
            config[key] = value
    return config


def _list_value(text: str) -> list[Any]:
    """`16,64` -> [16, 64]; `majority,lora` -> ["majority", "lora"]."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    return [int(item) if item.isdigit() else item for item in items]


def _set_mapping(items: list[str]) -> dict[str, Any]:
    """["lora.r=16", "epochs=2"] -> {"lora.r": 16, "epochs": 2}: YAML values where they read
    back to the same text, else the text."""
    import yaml

    mapping: dict[str, Any] = {}
    for item in items:
        key, _, text = item.partition("=")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            value = text
        mapping[key.strip()] = value if set_text(value) == text.strip() else text.strip()
    return mapping


def plan_config(plan: Any, parser: argparse.ArgumentParser,
                manifest: dict | None = None) -> dict[str, Any]:
    """A BenchPlan (or its stored dict) as a config mapping: the plan's bench arguments (the
    reproduce command's), parsed by bench's parser (advisor.bench_cli.new_parser()), written
    out."""
    from reports.reproduce import plan_arguments

    plan_dict = dataclasses.asdict(plan) if dataclasses.is_dataclass(plan) else dict(plan)
    if not plan_dict.get("data"):
        raise TunewiseError("a run config needs data: set the data path first")
    said = io.StringIO()
    try:
        with contextlib.redirect_stderr(said):
            args = parser.parse_args(plan_arguments(plan_dict, manifest))
    except SystemExit:
        why = said.getvalue().strip().splitlines()[-1:] or ["?"]
        raise TunewiseError(f"the stored plan has a value bench does not accept: {why[0]}") from None
    resolve(args, parser)
    return config_from_args(args, parser)


def dump_config(config: dict[str, Any], name: str = "run.yaml") -> str:
    import yaml

    return HEADER.format(name=name) + yaml.safe_dump(config, sort_keys=False, allow_unicode=True)


def write_config(config: dict[str, Any], path: str | Path) -> Path:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dump_config(config, str(path)), encoding="utf-8")
    except OSError as exc:
        raise TunewiseError(f"cannot write the config to {path}: {exc.strerror or exc}") from None
    return path


def write_plan_config(plan: Any, path: str | Path, parser: argparse.ArgumentParser) -> Path:
    """Save the run a plan describes as a config file (TUI, advise --write-config)."""
    return write_config(plan_config(plan, parser), path)


def store_in_run_folder(run_dir: str | Path | None, parser: argparse.ArgumentParser,
                        warn: Callable[[str], None] | None = None) -> Path | None:
    """Write RUN_DIR/config.yaml from the plan its manifest stores (the resolved names of
    `all`, every choice spelled out), so `tunewise bench --config RUN_DIR/config.yaml` reruns
    it. A failure here never hides the run: it is reported through `warn`."""
    from bench import journal

    if run_dir is None:
        return None
    run_dir = Path(run_dir)
    try:
        manifest = journal.read_json(run_dir / journal.MANIFEST)
        config = plan_config(manifest["plan"], parser, manifest)
        return write_config(config, run_dir / CONFIG_NAME)
    except (TunewiseError, OSError, KeyError, ValueError) as exc:
        if warn is not None:
            warn(f"tunewise: the run's {CONFIG_NAME} could not be written ({exc})")
        return None
