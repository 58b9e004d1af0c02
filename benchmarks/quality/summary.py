"""From stored runs to the benchmark's numbers: the learning rate each
configuration would be given (by validation accuracy), its test accuracy
over seeds, and the targets."""

import collections

import numpy as np

from benchmarks.statistics import mean_and_error


class Cell:
    """The runs of one configuration at one learning rate, over seeds."""

    def __init__(self, records):
        self.records = records
        self.learning_rate = records[0]["learning_rate"]
        val = float(np.mean([r["val_accuracy"][-1] for r in records]))
        # A run that diverged (NaN) is never the choice.
        self.val = val if np.isfinite(val) else -np.inf
        self.test, self.test_error = mean_and_error(
            [r["test_accuracy"] for r in records])
        self.gap, self.gap_error = mean_and_error(
            [r["train_accuracy"] - r["test_accuracy"] for r in records])
        self.seconds_per_epoch = float(np.median(
            [r["seconds_per_epoch"] for r in records]))
        self.curve = np.mean([r["val_accuracy"] for r in records], axis=0)
        self.seeds = len(records)

    @property
    def epochs_to_95(self):
        """First epoch (from 1) at which the mean validation accuracy
        reaches 95% of its best."""
        return int(np.argmax(self.curve >= 0.95 * self.curve.max())) + 1


def group(records, *keys):
    groups = collections.defaultdict(list)
    for record in records:
        groups[tuple(record.get(k) for k in keys)].append(record)
    return groups


def sweep_cells(records):
    """{(task, optimizer, schedule): [Cell per learning rate, ascending]}"""
    sweep = [r for r in records if not r.get("study")]
    cells = collections.defaultdict(list)
    for key, runs in sorted(group(sweep, "task", "optimizer", "schedule",
                                  "learning_rate").items()):
        cells[key[:3]].append(Cell(runs))
    return cells


def chosen(cells):
    """The cell with the best mean validation accuracy (ties: lower lr)."""
    return max(cells, key=lambda c: (c.val, -c.learning_rate))


def best_per_optimizer(cells):
    """{(task, optimizer): (schedule, Cell)}, the schedule and learning
    rate chosen by validation accuracy."""
    best = {}
    for (task, optimizer, schedule), row in cells.items():
        cell = chosen(row)
        current = best.get((task, optimizer))
        if current is None or cell.val > current[1].val:
            best[(task, optimizer)] = (schedule, cell)
    return best


def study_cells(records):
    """{(task, study): Cell} for the threshold study."""
    return {key: Cell(runs) for key, runs in
            group([r for r in records if r.get("study")],
                  "task", "study").items()}


def recipe_target(best, tasks, recipe, baseline="Adam"):
    """Per task, (recipe cell, baseline cell, within one SE, above)."""
    rows = {}
    for task in tasks:
        if (task, recipe) not in best or (task, baseline) not in best:
            continue
        ours, theirs = best[(task, recipe)][1], best[(task, baseline)][1]
        error = theirs.test_error if np.isfinite(theirs.test_error) else 0.0
        rows[task] = (ours, theirs, ours.test >= theirs.test - error,
                      ours.test > theirs.test)
    return rows


def leave_one_task_out(best, tasks, candidates, baseline="Adam"):
    """The recommended setting for each task, chosen without it.

    A candidate's margin on a task is its validation score minus the
    baseline's (each at the learning rate and schedule its own validation
    runs chose). For each held-out task the candidate with the highest mean
    margin over the other tasks is chosen (ties: the earlier candidate),
    and its test score on the held-out task is what counts; the candidate
    with the highest mean margin over all tasks is the in-sample choice,
    shown beside it. Returns {task: (chosen, its cell, in-sample choice,
    its cell, baseline cell, chosen within one SE of the baseline)}.
    """
    tasks = [t for t in tasks if (t, baseline) in best]
    candidates = [c for c in candidates
                  if all((t, c) in best for t in tasks)]
    if len(tasks) < 2 or not candidates:
        return {}
    margin = {(c, t): best[(t, c)][1].val - best[(t, baseline)][1].val
              for c in candidates for t in tasks}

    def choice(over):
        return max(candidates, key=lambda c: (
            np.mean([margin[(c, t)] for t in over]), -candidates.index(c)))

    in_sample = choice(tasks)
    rows = {}
    for held in tasks:
        chosen = choice([t for t in tasks if t != held])
        ours, theirs = best[(held, chosen)][1], best[(held, baseline)][1]
        error = theirs.test_error if np.isfinite(theirs.test_error) else 0.0
        rows[held] = (chosen, ours, in_sample, best[(held, in_sample)][1],
                      theirs, ours.test >= theirs.test - error)
    return rows


def controller_ends(records, tolerance=0.05):
    """Per (task, study) of the threshold study with `AdaptiveConfidence`:
    (mean end sparsity, end target, within `tolerance`)."""
    rows = {}
    for (task, study), runs in group(
            [r for r in records if "end_sparsity" in r],
            "task", "study").items():
        end = float(np.mean([r["end_sparsity"] for r in runs]))
        target = float(np.mean([r["end_target"] for r in runs]))
        rows[(task, study)] = (end, target, abs(end - target) <= tolerance)
    return rows


def adaptive_target(studies, tasks, fixed_name="fixed",
                    adaptive_name="adaptive"):
    """Per task, (fixed, adaptive, narrower gap, accuracy kept)."""
    rows = {}
    for task in tasks:
        fixed, adaptive = studies.get((task, fixed_name)), studies.get(
            (task, adaptive_name))
        if fixed is None or adaptive is None:
            continue
        error = fixed.test_error if np.isfinite(fixed.test_error) else 0.0
        rows[task] = (fixed, adaptive, adaptive.gap < fixed.gap,
                      adaptive.test >= fixed.test - error)
    return rows
