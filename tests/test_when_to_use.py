"""The README's figure is made from the committed quality runs: its
accuracy differences are the validation-chosen test accuracies of the
committed table, and its bytes come from the declared state."""

import json
import os
import re

import pytest

from benchmarks import when_to_use
from tests.helpers import ROOT


def test_figure_from_the_committed_runs(tmp_path, capsys):
    output = tmp_path / "figure.png"
    when_to_use.main(["--output", str(output)])
    assert output.read_bytes()[:4] == b"\x89PNG"
    printed = {name: line
               for line in capsys.readouterr().out.splitlines()
               for name in when_to_use.SHOWN
               if line.startswith(f"{name} digits_")}
    assert set(printed) == set(when_to_use.SHOWN)
    # The committed table's means, read as text: signADAM++ minus Adam.
    with open(os.path.join(ROOT, "benchmarks", "results", "hybrid",
                           "quality.md"), encoding="utf-8") as f:
        table = f.read()
    with open(when_to_use.RUNS, encoding="utf-8") as f:
        assert sum(1 for _ in f) > 100

    def best(name):
        row = re.search(rf"^\| \*?\*?{re.escape(name)}\*?\*? \| (.*)$",
                        table.split("## Targets")[0], re.M)
        return [float(v) for v in re.findall(r"(0\.\d{4}) ±", row.group(1))]

    ours, adam = best("signADAM++"), best("Adam")
    differences = [float(v) for v in re.findall(
        r"[+-]\d+\.\d", printed["signADAM++"])]
    tasks = re.findall(r"(\w+_\w+) [+-]", printed["signADAM++"])
    assert tasks == sorted(tasks)
    assert len(differences) == len(ours) >= 4
    # The table lists tasks in its own order; compare as sets of values.
    expected = sorted(round(100 * (a - b), 1) for a, b in zip(ours, adam))
    assert sorted(differences) == pytest.approx(expected, abs=0.11)


def test_state_bytes_follow_the_declared_moments():
    import keras_signadam as ks

    assert when_to_use.state_bytes(ks.SignAdamPP) == 4
    assert when_to_use.state_bytes(ks.SignAdamPP, "int8") == 1
    assert when_to_use.state_bytes(ks.NovoGrad) == 4
    assert when_to_use.state_bytes(ks.SignSGD) == 0
    rows = {label: (state, wire) for label, state, wire in
            when_to_use.costs()}
    assert rows["Adam"][1] / rows["SignAdamPP int8 state + vote"][1] >= 8
    hybrid = rows[f"{when_to_use.HYBRID} + vote (mean of the 7 models)"]
    assert 4 < hybrid[0] < 6 and rows["SignAdamPP + vote"][1] < hybrid[1] < 3
    assert json.dumps(rows)  # plain numbers
