"""Splitting: given split files are respected; a missing test or validation split is carved,
stratified by label and seeded; the train split can be capped."""

from __future__ import annotations

from collections import Counter

from bench.data.messages import DataError, Report


def _split_count(n: int, fraction: float) -> int:
    if fraction <= 0:
        return 0
    return min(n - 1, max(1, round(n * fraction)))


class _CannotStratify(ValueError):
    """Fewer rows on one side than there are labels: a stratified split is impossible."""


def _stratified_take(pool: list[int], strata: list[str] | None, count: int, seed: int
                     ) -> tuple[list[int], list[int]]:
    """(kept, taken): `count` rows taken at random, in proportion to each label's share when
    `strata` is given (every label keeps at least one row on each side).

    A few lines of numpy instead of scikit-learn's train_test_split: importing scikit-learn
    costs the parent seconds per run, and the split is all it was imported for."""
    import numpy as np

    rng = np.random.default_rng(seed)
    if strata is None:
        order = rng.permutation(len(pool))
        taken = set(order[:count].tolist())
        return ([p for i, p in enumerate(pool) if i not in taken],
                [pool[i] for i in sorted(taken)])
    groups: dict[str, list[int]] = {}
    for i, label in enumerate(strata):
        groups.setdefault(label, []).append(i)
    if (count < len(groups) or len(pool) - count < len(groups)
            or min(len(members) for members in groups.values()) < 2):
        raise _CannotStratify(f"{count} of {len(pool)} rows for {len(groups)} labels")
    names = sorted(groups)
    sizes = np.array([len(groups[n]) for n in names])
    exact = sizes * count / len(pool)
    quota = np.clip(np.floor(exact).astype(int), 1, sizes - 1)
    # Largest remainders first (random among ties) until the quotas add up to `count`.
    while quota.sum() != count:
        room = sizes - 1 - quota
        step = 1 if quota.sum() < count else -1
        allowed = room > 0 if step == 1 else quota > 1
        priority = (exact - quota) * step + rng.random(len(names)) * 1e-9
        priority[~allowed] = -np.inf
        quota[int(np.argmax(priority))] += step
    taken: set[int] = set()
    for name, n in zip(names, quota):
        members = groups[name]
        taken.update(members[j] for j in rng.permutation(len(members))[:n].tolist())
    return ([p for i, p in enumerate(pool) if i not in taken],
            [pool[i] for i in sorted(taken)])


def _carve(positions: list[int], labels: list[str] | None, fraction: float, seed: int,
           report: Report, what: str) -> tuple[list[int], list[int]]:
    """Split positions into (kept, carved) with about `fraction` carved, stratified by label.

    Labels with fewer than 2 rows cannot be on both sides: they stay on the kept side."""
    count = _split_count(len(positions), fraction)
    if count == 0:
        return list(positions), []
    if labels is None:
        return _stratified_take(list(positions), None, count, seed)
    by_label = Counter(labels[p] for p in positions)
    rare = {label for label, n in by_label.items() if n < 2}
    pool = [p for p in positions if labels[p] not in rare]  # check_labels warns of these
    count = min(count, len(pool) - 1)
    if count < 1:
        return list(positions), []
    try:
        kept, carved = _stratified_take(pool, [labels[p] for p in pool], count, seed)
    except _CannotStratify:
        report.note(f"the {what} split has fewer rows ({count}) than there are labels "
                    f"({len(set(labels[p] for p in pool))}): split at random, not stratified")
        kept, carved = _stratified_take(pool, None, count, seed)
    rare_rows = [p for p in positions if labels[p] in rare]
    return kept + rare_rows, carved


def cap_train(train: list[int], labels: list[str] | None, max_rows: int, seed: int,
               report: Report) -> list[int]:
    """A stratified, seeded subset of `max_rows` train rows (quick presets, learning curves)."""
    if len(train) <= max_rows:
        return train
    report.note(f"train capped at {max_rows} of {len(train)} rows (stratified, seed fixed)")
    stratify = [labels[p] for p in train] if labels is not None else None
    try:
        _, kept = _stratified_take(train, stratify, max_rows, seed)
    except _CannotStratify:  # a cap below the number of labels
        _, kept = _stratified_take(train, None, max_rows, seed)
    return kept


def split_positions(given: dict[str, list[int]], labels: list[str] | None, seed: int,
                     test_size: float, val_size: float, max_rows: int | None,
                     report: Report) -> dict[str, list[int]]:
    """Given split files are respected; what is missing is carved, stratified and seeded."""
    train = given["train"]
    test = given.get("test")
    validation = given.get("validation")
    if test is None:
        train, test = _carve(train, labels, test_size, seed, report, "test")
    if validation is None:
        # from one file, validation is val_size of all rows; with a given test, of train
        fraction = val_size / (1 - test_size) if "test" not in given else val_size
        train, validation = _carve(train, labels, fraction, seed, report, "validation")
    if not test:
        raise DataError(f"too few usable rows ({len(train)}) to hold out a test split; "
                        f"add rows or pass --test FILE")
    if max_rows is not None:
        train = cap_train(train, labels, max_rows, seed, report)
    return {"train": train, "validation": validation, "test": test}
