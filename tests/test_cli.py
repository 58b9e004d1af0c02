"""The main command end to end, on the bundled digits with a tiny budget."""

import json
import os
import subprocess
import sys

import pytest


def run_cli(*args, cwd):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        [sys.executable, "-m", "keras_signadam", *args],
        capture_output=True, text=True, cwd=cwd, env=env, timeout=600,
    )


def test_compare_prints_table_and_writes_json(tmp_path):
    out = tmp_path / "out"
    result = run_cli("compare", "--epochs", "2", "--optimizers",
                     "SignAdamPP,Adam", "--output", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    header = next(i for i, line in enumerate(lines)
                  if line.startswith("optimizer"))
    rows = {line.split()[0]: line.split() for line in lines[header + 2:]
            if line.split() and line.split()[0] in ("SignAdamPP", "Adam")}
    assert set(rows) == {"SignAdamPP", "Adam"}
    data = json.loads((out / "results.json").read_text())
    for name, row in rows.items():
        r = data["results"][name]
        assert len(r["history"]["loss"]) == 2
        assert float(row[5]) == pytest.approx(r["test_accuracy"], abs=1e-4)
        assert 0.3 < r["test_accuracy"] <= 1.0
    assert 0.0 <= data["results"]["SignAdamPP"]["sparsity"] <= 1.0
    assert data["results"]["Adam"]["sparsity"] is None


@pytest.mark.parametrize("args,message", [
    (["--optimizers", "Adamm"], "unknown optimizer"),
    (["--epochs", "0"], "must be > 0"),
    (["--batch-size", "-4"], "must be > 0"),
])
def test_bad_input_exits_2_with_one_line(args, message, tmp_path):
    result = run_cli("compare", *args, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
