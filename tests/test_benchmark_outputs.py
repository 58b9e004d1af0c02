"""Committed benchmark results cannot go stale: each is written by the one
`make benchmarks` command (`make benchmarks-gpu` for those taken on a GPU
machine), and its tables have the columns its script prints today."""

import glob
import importlib
import os
import re

import pytest

from tests.helpers import ROOT

# Committed result file -> the benchmark module that writes it.
RESULTS = {
    "benchmarks/RESULTS.md": "benchmarks.update_step",
    "benchmarks/results/first_fit.md": "benchmarks.first_fit",
    "benchmarks/results/learning_rate_sweep.md":
        "benchmarks.learning_rate_sweep",
    "benchmarks/results/generalization.md": "benchmarks.generalization",
    "benchmarks/results/communication.md": "benchmarks.communication",
    "benchmarks/results/vote_encode.md": "benchmarks.vote_encode",
    "benchmarks/results/slow_link.md": "benchmarks.slow_link",
    "benchmarks/results/vote_rules_0_6/slow_link.md": "benchmarks.slow_link",
    "benchmarks/results/local_steps/slow_link.md": "benchmarks.slow_link",
    "benchmarks/results/local_steps_long/slow_link.md":
        "benchmarks.slow_link",
    "benchmarks/results/local_steps_ten_seeds/12_epochs.md":
        "benchmarks.slow_link",
    "benchmarks/results/local_steps_ten_seeds/24_epochs.md":
        "benchmarks.slow_link",
    "benchmarks/results/local_steps_top_k/12_epochs.md":
        "benchmarks.slow_link",
    "benchmarks/results/local_steps_top_k/24_epochs.md":
        "benchmarks.slow_link",
    "benchmarks/results/threshold_scale.md": "benchmarks.threshold_scale",
    "benchmarks/results/sparse_signal.md": "benchmarks.sparse_signal",
    "benchmarks/results/quality.md": "benchmarks.quality",
    "benchmarks/results/four_tasks/quality.md": "benchmarks.quality",
    "benchmarks/results/state_dtype/quality.md": "benchmarks.quality",
    "benchmarks/results/variants/quality.md": "benchmarks.quality",
    "benchmarks/results/wide_grid/quality.md": "benchmarks.quality",
    "benchmarks/results/paper_rules/quality.md": "benchmarks.quality",
    "benchmarks/results/hybrid/quality.md": "benchmarks.quality",
    "benchmarks/results/zhao_recipe/quality.md": "benchmarks.quality",
    "benchmarks/results/char_transformer/quality.md": "benchmarks.quality",
    "benchmarks/results/paper/paper.md": "benchmarks.paper",
    "benchmarks/results/gpu/update_step.md": "benchmarks.update_step",
    "benchmarks/results/gpu/update_step_scale1.md": "benchmarks.update_step",
    "benchmarks/results/gpu/quality_quick/quality.md": "benchmarks.quality",
}


def makefile_outputs():
    with open(os.path.join(ROOT, "Makefile"), encoding="utf-8") as f:
        text = f.read()
    target = "\n".join(text.split(f"\n{name}:", 1)[1].split("\n\n", 1)[0]
                       for name in ("benchmarks", "benchmarks-gpu"))
    commands = re.findall(r"-m (benchmarks\.\w+)[^\n]*(?:\\\n[^\n]*)*?"
                          r"--output ([\w/.]+)", target)
    outputs = {path: module for module, path in commands}
    # A benchmark that writes several files names a folder.
    for module, folder in re.findall(
            r"-m benchmarks\.(\w+) --output-dir(?: \\\n\s*)? ([\w/.]+)",
            target):
        outputs[f"{folder}/{module}.md"] = f"benchmarks.{module}"
    return outputs


def table_headers(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        lines = [line.rstrip("\n") for line in f]
    return {line for line, below in zip(lines, lines[1:])
            if line.startswith("| ") and below.startswith("|---")}


def test_every_committed_result_is_made_by_make_benchmarks():
    committed = {os.path.relpath(p, ROOT) for p in
                 glob.glob(os.path.join(ROOT, "benchmarks", "**", "*.md"),
                           recursive=True)}
    assert committed == set(RESULTS)
    assert makefile_outputs() == RESULTS


@pytest.mark.parametrize("path", sorted(RESULTS))
def test_committed_tables_have_the_columns_printed_today(path):
    module = importlib.import_module(RESULTS[path])
    headers = table_headers(path)
    assert headers, f"{path} has no table"
    # A run can leave a table out (the quality benchmark's threshold
    # study, when the optimizers it studies were not run), never change
    # one.
    assert headers <= set(module.TABLE_HEADERS)
