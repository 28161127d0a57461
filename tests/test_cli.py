"""`ffnbench train`: JSON output, saved weights, and one clear line for every bad input."""
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from ffnbench import cli
from ffnbench.core import data, harness

QUICK = ["--dataset", "red", "--hidden", "5", "--epochs", "2", "--patience", "0"]


def run(capsys, *argv):
    code = cli.main(["train", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_has_the_promised_keys(capsys):
    code, out, err = run(capsys, "--backend", "numba", *QUICK, "--json")
    assert code == 0 and err == ""
    r = json.loads(out)
    for key in ("backend", "dataset", "config", "train_mse", "val_mse", "test_mse", "test_rmse",
                "test_mae", "test_acc_0_5", "test_acc_1_0", "epochs_run", "best_epoch",
                "diverged", "diverged_epoch", "seconds_per_epoch", "warmup_seconds"):
        assert key in r, key
    assert r["config"]["hidden"] == [5] and r["epochs_run"] == 2 and r["diverged"] is False
    assert 0 < r["test_mse"] < 2


def test_classification_json(capsys):
    code, out, _ = run(capsys, "--backend", "numpy", "--dataset", "red-quality-class", "--hidden", "8",
                       "--epochs", "2", "--optimizer", "adam", "--lr", "0.01", "--batch-size", "16", "--json")
    r = json.loads(out)
    assert code == 0 and r["task"] == "multiclass" and r["classes"] == [3, 4, 5, 6, 7, 8]
    assert r["config"]["loss"] == "ce" and 0 <= r["test_accuracy"] <= 1
    assert sum(map(sum, r["test_confusion"])) == r["n_test"]


def test_human_summary(capsys):
    code, out, _ = run(capsys, "--backend", "numpy", *QUICK)
    assert code == 0 and "test MSE" in out and "ms/epoch" in out


def test_saved_weights_are_equal_across_backends(capsys, tmp_path):
    saved = {}
    for backend in ("numpy", "torch", "numba"):
        path = tmp_path / f"{backend}.npz"
        assert run(capsys, "--backend", backend, *QUICK, "--save-weights", str(path))[0] == 0
        saved[backend] = np.load(path)
        assert sorted(saved[backend].files) == ["W1", "W2", "b1", "b2"]
        assert saved[backend]["W1"].shape == (5, 11) and saved[backend]["W1"].dtype == np.float64
    for name in saved["numpy"].files:
        assert np.max(np.abs(saved["numpy"][name] - saved["torch"][name])) <= 1e-12
        assert np.max(np.abs(saved["numba"][name] - saved["torch"][name])) <= 1e-12


def test_save_weights_into_a_missing_directory_fails_before_training(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(harness, "train", lambda *a, **k: pytest.fail("training started"))
    code, out, err = run(capsys, *QUICK, "--save-weights", str(tmp_path / "nope" / "w.npz"))
    assert code == 2 and "does not exist" in err


def _corrupt(data_dir, edit):
    """Rewrite the red-wine CSV in data_dir (the conftest fixture's copy) with edit."""
    red = data_dir / data.FILES["red"][0]
    red.write_bytes(edit(red.read_bytes()))
    return str(data_dir)


BAD = [
    (["--backend", "fortran"], "--backend: invalid choice: 'fortran'"),
    (["--activation", "swish"], "--activation: invalid choice: 'swish'"),
    (["--dataset", "rose"], "--dataset: invalid choice: 'rose'"),
    (["--hidden", "10,,5"], "empty layer size"),
    (["--hidden", "0"], "at least 1, got 0"),
    (["--hidden", "-3"], "at least 1, got -3"),
    (["--hidden", "abc"], "'abc' is not a whole number"),
    (["--lr", "-1"], "--lr must be a finite number greater than 0"),
    (["--lr", "nan"], "--lr must be a finite number greater than 0"),
    (["--lr", "abc"], "argument --lr: invalid float value"),
    (["--l2", "-0.1"], "--l2 must be a finite number at least 0"),
    (["--epochs", "0"], "--epochs must be a whole number of at least 1"),
    (["--patience", "-1"], "--patience must be a whole number of at least 0"),
    (["--init", "zeros"], "--init: invalid choice: 'zeros'"),
    (["--device", "cuda", "--backend", "numpy"], "runs on cpu only"),
    (["--loss", "ce"], "--loss ce (softmax output) does not fit dataset 'red', a regression task"),
    (["--dataset", "white-quality-class", "--loss", "bce"], "a multiclass task: use --loss ce"),
    (["--dataset", "color", "--loss", "mse"], "use --loss bce or ce"),
    (["--loss", "hinge"], "--loss: invalid choice: 'hinge'"),
    (["--optimizer", "rmsprop"], "--optimizer: invalid choice: 'rmsprop'"),
    (["--batch-size", "0"], "--batch-size must be at least 1 or 'full'"),
    (["--batch-size", "half"], "--batch-size must be a whole number or 'full'"),
    (["--beta2", "1"], "--beta2 must be a finite number at least 0 and below 1"),
    (["--eps", "0"], "--eps must be a finite number greater than 0"),
]


@pytest.mark.parametrize("argv, message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_option_is_one_clear_line(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


@pytest.mark.parametrize("edit, message", [
    (lambda raw: raw[: len(raw) // 3], "does not match the UCI file"),
    (lambda raw: raw.replace(b"7.4;0.7;0", b"7.4;0.8;0", 1), "does not match the UCI file"),
])
def test_bad_csv_is_one_clear_line(capsys, data_dir, edit, message):
    code, _, err = run(capsys, *QUICK, "--data-dir", _corrupt(data_dir, edit))
    assert code == 2 and err.count("\n") == 1 and message in err


def test_non_numeric_cell_with_allow_unverified(capsys, data_dir):
    d = _corrupt(data_dir, lambda raw: raw.replace(b"7.4;0.7;0", b"7.4;x;0", 1))
    code, _, err = run(capsys, *QUICK, "--data-dir", d, "--allow-unverified")
    assert code == 2 and "non-numeric cell 'x' at data row 1" in err


def test_missing_csv(capsys, tmp_path):
    code, _, err = run(capsys, *QUICK, "--data-dir", str(tmp_path))
    assert code == 2 and "cannot read" in err and err.count("\n") == 1


@pytest.mark.parametrize("backend, module", [("torch", "torch"), ("numba", "numba")])
def test_missing_engine_is_one_clear_line(capsys, monkeypatch, backend, module):
    monkeypatch.delitem(sys.modules, f"ffnbench.impls.{backend}_ffn", raising=False)
    monkeypatch.setitem(sys.modules, module, None)  # import of `module` now fails
    code, _, err = run(capsys, "--backend", backend, *QUICK)
    assert code == 2 and f"needs the package '{module}'" in err and err.count("\n") == 1


def test_cuda_falls_back_to_cpu_with_a_message(capsys):
    import torch
    if torch.cuda.is_available():
        pytest.skip("CUDA present: no fallback to check")
    code, out, err = run(capsys, "--backend", "torch", "--device", "cuda", *QUICK, "--json")
    assert code == 0
    assert err.count("CUDA is not available") == 1 and json.loads(out)["device"] == "cpu"


def test_console_script_end_to_end(tmp_path):
    """The installed `ffnbench` command, in its own process: JSON on stdout, errors on stderr."""
    exe = shutil.which("ffnbench", path=str(__import__("pathlib").Path(sys.executable).parent))
    ok = subprocess.run([exe, "train", "--backend", "numpy", *QUICK, "--json"],
                        capture_output=True, text=True, check=True)
    assert json.loads(ok.stdout)["backend"] == "numpy"
    bad = subprocess.run([exe, "train", "--hidden", "10,,5"], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.startswith("ffnbench: error:") and bad.stdout == ""


def test_seeds_summary_is_computed_from_the_runs(capsys):
    code, out, _ = run(capsys, "--backend", "numba", *QUICK, "--seeds", "3", "--seed", "4", "--json")
    doc = json.loads(out)
    mses = [r["test_mse"] for r in doc["runs"]]
    assert code == 0 and [r["config"]["seed"] for r in doc["runs"]] == [4, 5, 6]
    assert doc["summary"]["metrics"]["test_mse"]["mean"] == pytest.approx(np.mean(mses))
    assert doc["summary"]["metrics"]["test_mse"]["sd"] == pytest.approx(np.std(mses, ddof=1))
    assert len(set(mses)) == 3  # different seeds, different splits


def test_seeds_text_is_a_line_per_run_then_the_same_summary(capsys):
    """The README's `train ... --seeds 5` as text (its first form broke: a traceback)."""
    code, out, _ = run(capsys, "--backend", "numpy", *QUICK, "--seeds", "3")
    doc = json.loads(run(capsys, "--backend", "numpy", *QUICK, "--seeds", "3", "--json")[1])
    lines = out.splitlines()
    k = len(doc["summary"]["metrics"])
    assert code == 0 and sum(line.startswith("numpy on red:") for line in lines) == 3
    assert lines[-k - 1] == f"over 3 seeds {doc['summary']['seeds']} (0 diverged):"
    m = doc["summary"]["metrics"]["test_mse"]
    assert f"test_mse: {m['mean']:.4f} ± {m['sd']:.4f}" in out


def test_seeds_with_save_weights_is_refused(capsys, tmp_path):
    code, _, err = run(capsys, *QUICK, "--seeds", "2", "--save-weights", str(tmp_path / "w.npz"))
    assert code == 2 and "--save-weights saves one run" in err
