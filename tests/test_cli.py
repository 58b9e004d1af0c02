"""The main command end to end, and every bad-input case."""

import json
import os
import subprocess
import sys

import pytest
import tensorflow_datasets as tfds

from keras_signadam.comparison import cli


def run_cli(*args, cwd):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        [sys.executable, "-m", "keras_signadam", *args],
        capture_output=True, text=True, cwd=cwd, env=env, timeout=600,
    )


def error_lines(stderr):
    return [line for line in stderr.splitlines()
            if line.startswith("keras-signadam:")]


def table_rows(stdout, names):
    lines = stdout.splitlines()
    header = next(i for i, line in enumerate(lines)
                  if line.startswith("optimizer"))
    return {line.split()[0]: line.split() for line in lines[header + 2:]
            if line.split() and line.split()[0] in names}


def check_outputs(out, rows, epochs):
    data = json.loads((out / "results.json").read_text())
    for name, row in rows.items():
        r = data["results"][name]
        assert len(r["history"]["loss"]) == epochs
        assert float(row[5]) == pytest.approx(r["test_accuracy"], abs=1e-4)
    png = (out / "curves.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    return data


def test_default_dataset_end_to_end(tmp_path):
    out = tmp_path / "out"
    result = run_cli("compare", "--epochs", "2", "--optimizers",
                     "SignAdamPP,NovoGrad,Adam", "--output", str(out),
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "SignAdamPP    epoch   2/2" in result.stdout
    rows = table_rows(result.stdout, ("SignAdamPP", "NovoGrad", "Adam"))
    assert set(rows) == {"SignAdamPP", "NovoGrad", "Adam"}
    data = check_outputs(out, rows, 2)
    assert 0.3 < data["results"]["Adam"]["test_accuracy"] <= 1.0
    assert 0.0 <= data["results"]["SignAdamPP"]["sparsity"] <= 1.0
    assert data["results"]["Adam"]["sparsity"] is None
    assert data["metadata"]["model"] == "mlp"


def test_tfds_dataset_under_mock_data(tmp_path, capsys):
    out = tmp_path / "out"
    with tfds.testing.mock_data(num_examples=48):
        status = cli.main(["compare", "--dataset", "fashion_mnist",
                           "--epochs", "1", "--batch-size", "16",
                           "--optimizers", "SignAdamPP,SGD-momentum",
                           "--learning-rates", "SignAdamPP=3e-3",
                           "--output", str(out)])
    assert status == 0
    stdout = capsys.readouterr().out
    assert "fashion_mnist (tensorflow_datasets), 48 train / 48 test" in stdout
    rows = table_rows(stdout, ("SignAdamPP", "SGD-momentum"))
    data = check_outputs(out, rows, 1)
    assert data["metadata"]["model"] == "cnn"
    assert data["results"]["SignAdamPP"]["learning_rate"] == 3e-3


def test_failed_download_says_so(tmp_path, capsys, monkeypatch):
    def offline(*args, **kwargs):
        raise ConnectionError("Failed to get url https://example/mnist.gz")

    monkeypatch.setattr(tfds, "load", offline)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["compare", "--dataset", "mnist", "--output",
                  str(tmp_path)])
    assert exit_info.value.code == 1
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1
    assert "could not download" in lines[0] and "mnist" in lines[0]


@pytest.mark.parametrize("args,message", [
    (["--optimizers", "Adamm"], "unknown optimizer(s) Adamm; choose from"),
    (["--model", "vgg16"], "unknown model 'vgg16'; choose from auto, mlp"),
    (["--dataset", "no_such_dataset"], "unknown dataset 'no_such_dataset'"),
    (["--dataset", "glue"], "is not an image classification dataset"),
    (["--epochs", "0"], "must be > 0"),
    (["--batch-size", "-4"], "must be > 0"),
    (["--learning-rates", "Adam=fast"], "expected NAME=RATE"),
    (["--learning-rates", "Adamm=1e-3"], "unknown optimizer(s) Adamm"),
    (["--output", "/proc/forbidden/out"], "cannot write to --output"),
])
def test_bad_input_exits_2_with_one_line(args, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["compare", *args])
    assert exit_info.value.code == 2
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1, lines
    assert message in lines[0]


def test_console_script_help():
    script = os.path.join(os.path.dirname(sys.executable), "keras-signadam")
    assert os.path.exists(script), "package not installed with its script"
    result = subprocess.run([script, "compare", "--help"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0
    assert "--dataset" in result.stdout and "--learning-rates" in (
        result.stdout)
