"""Reading the user's YAML files (answers, run configs) with messages that say where they are
wrong, and the "did you mean" hint every unknown key or choice gets."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from bench.errors import TunewiseError


def read_yaml(path: Path, what: str, error: type[TunewiseError] = TunewiseError) -> Any:
    """The file's YAML content; `error` (a message naming the file, and the line for bad YAML)
    when it cannot be read or parsed. `what` names the file for the user: "answers file"."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise error(f"cannot read {what} {path}: not UTF-8 text") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise error(f"{path}{where}: not valid YAML "
                    f"({getattr(exc, 'problem', None) or exc})") from None


def did_you_mean(word: str, options) -> str:
    """' (did you mean 'x'?)' for the closest option, or '' when none is close."""
    close = difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
