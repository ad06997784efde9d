"""attn_lib.colab: the Colab set-up decisions, tested without network or GPU."""
from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

import attn_lib
from attn_lib import colab

REPO = "https://github.com/example-org/example-book"


# ------------------------------------------------------------------ install or not, and how
def test_install_ref_is_the_release_tag():
    assert colab.install_ref() == f"v{attn_lib.__version__}"
    assert colab.install_ref("1.2.3") == "v1.2.3"
    with pytest.raises(ValueError, match="version"):
        colab.install_ref("latest")


def test_install_command_pins_ref_and_keeps_runtime_torch():
    cmd = colab.install_command(REPO, python="py")
    assert cmd == ["py", "-m", "pip", "install", "-q", "--no-deps",
                   f"git+{REPO}.git@v{attn_lib.__version__}"]
    assert "--no-deps" in cmd  # Colab's CUDA torch/Triton must survive


@pytest.mark.parametrize("url", [REPO + "/", REPO + ".git"])
def test_install_command_normalises_url(url):
    assert colab.install_command(url, "abc123", python="py")[-1] == f"git+{REPO}.git@abc123"


def test_install_command_uses_running_python_by_default():
    assert colab.install_command(REPO)[0] == sys.executable


@pytest.mark.parametrize("bad", ["http://x.org/repo", "git@github.com:o/r", "", None])
def test_install_command_rejects_non_https(bad):
    with pytest.raises(ValueError, match="repo_url"):
        colab.install_command(bad)


def test_needs_install():
    assert colab.needs_install() is False  # the test environment has attn_lib
    assert colab.needs_install(find_spec=lambda name: None) is True
    assert colab.needs_install(find_spec=lambda name: object()) is False


# ------------------------------------------------------------------ dtype per device
@pytest.mark.parametrize("device, capability, dtype", [
    ("cpu", None, "float32"),
    ("cuda", (7, 5), "float16"),   # T4: Turing, no native bf16
    ("cuda", (7, 0), "float16"),   # V100
    ("cuda", (8, 0), "bfloat16"),  # A100
    ("cuda", (8, 9), "bfloat16"),  # L4
    ("cuda", (9, 0), "bfloat16"),  # H100 / H200
])
def test_dtype_for_device(device, capability, dtype):
    assert colab.dtype_for(device, capability) == dtype


def test_preferred_dtype():
    assert colab.preferred_dtype("cpu", True) == "float32"
    assert colab.preferred_dtype("cuda", False) == "float16"
    assert colab.preferred_dtype("cuda", True) == "bfloat16"
    with pytest.raises(ValueError, match="device_type"):
        colab.preferred_dtype("tpu", True)


@pytest.mark.parametrize("name", colab.FLOAT_DTYPES)
def test_torch_dtype_is_the_one_name_converter(name):
    torch = pytest.importorskip("torch")
    assert colab.torch_dtype(name) is getattr(torch, name)
    assert colab.torch_dtype(getattr(torch, name)) is getattr(torch, name)  # passes through


@pytest.mark.parametrize("bad", ["float", "int8", "torch.float16", None, 16, "BFLOAT16"])
def test_torch_dtype_refuses_other_names(bad):
    pytest.importorskip("torch")
    with pytest.raises(TypeError, match="dtype must be a torch float dtype or one of"):
        colab.torch_dtype(bad)


def test_torch_dtype_refuses_integer_dtypes():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="dtype must be a torch float dtype"):
        colab.torch_dtype(torch.int64)


def test_the_library_has_one_dtype_converter_and_one_bf16_rule():
    # No module converts names with getattr(torch, ...) or asks torch whether bf16 is supported
    # (it says True on a T4).
    from pathlib import Path

    root = Path(colab.__file__).parent
    for path in root.rglob("*.py"):
        text = path.read_text()
        assert path.name == "colab.py" or "getattr(torch, " not in text, path
        if path.name != "colab.py":
            assert "is_bf16_supported()" not in text, path


def test_bf16_native_rejects_malformed_capability():
    assert colab.bf16_native(None) is False
    with pytest.raises(ValueError, match="capability"):
        colab.bf16_native((8,))


def test_environment_on_this_machine():
    env = colab.environment()
    assert set(env) == {"device", "name", "dtype", "torch", "attn_lib"}
    assert env["attn_lib"] == attn_lib.__version__
    if env["device"] == "cpu":
        assert (env["name"], env["dtype"]) == ("CPU", "float32")
    else:
        assert env["dtype"] in ("float16", "bfloat16")


@pytest.mark.parametrize("name, capability, dtype", [
    ("Tesla T4", (7, 5), "float16"), ("NVIDIA H100 80GB HBM3", (9, 0), "bfloat16")])
def test_environment_on_a_gpu(monkeypatch, name, capability, dtype):
    # torch.cuda.is_bf16_supported() says True on a T4 (emulation); capability decides instead.
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(attn_lib, "device", lambda: "cuda")
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: name)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    env = colab.environment()
    assert (env["device"], env["name"], env["dtype"]) == ("cuda", name, dtype)


# ------------------------------------------------------------------ the cell
def test_colab_cell_mentions_pinned_command():
    cell = colab.colab_cell(REPO)
    assert f"REPO = {REPO!r}" in cell and f".git@v{attn_lib.__version__}" in cell
    assert "'--no-deps'" in cell and "describe(ENV)" in cell
    assert max(len(line) for line in cell.splitlines()) <= 80  # fits the page column
    compile(cell, "<colab cell>", "exec")


def _run_cell(cell, monkeypatch, installed: bool):
    calls = []
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: real_find_spec(name, *a) if installed or name != "attn_lib" else None)
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append((cmd, kw)))
    namespace = {}
    exec(compile(cell, "<colab cell>", "exec"), namespace)
    return calls, namespace


def test_colab_cell_does_nothing_where_attn_lib_is_installed(monkeypatch, capsys):
    calls, ns = _run_cell(colab.colab_cell(REPO), monkeypatch, installed=True)
    assert calls == []
    assert ns["ENV"]["device"] in ("cpu", "cuda")
    out = capsys.readouterr().out  # one short line naming the device
    assert out.startswith(ns["ENV"]["device"]) and out.count("\n") == 1 and len(out) <= 80


def test_colab_cell_installs_on_a_fresh_runtime(monkeypatch):
    calls, _ = _run_cell(colab.colab_cell(REPO, "v9.9.9"), monkeypatch, installed=False)
    [(cmd, kwargs)] = calls
    assert cmd == colab.install_command(REPO, "v9.9.9")
    assert kwargs == {"check": True}


@pytest.mark.parametrize("url", ["https://github.com/o/r", "https://github.com/o/r/", "https://github.com/o/r.git"])
def test_colab_url_matches_the_theme(url):
    assert colab.colab_url(url, "dev", "book/ch1.ipynb") == \
        "https://colab.research.google.com/github/o/r/blob/dev/book/ch1.ipynb"


@pytest.mark.parametrize("url, path, arg", [
    ("https://gitlab.com/o/r", "book/a.ipynb", "repo_url"),
    ("https://github.com/o/r", "book/a.md", "notebook_path"),
    ("https://github.com/o/r", "/abs/a.ipynb", "notebook_path")])
def test_colab_url_rejects_bad_input(url, path, arg):
    with pytest.raises(ValueError, match=arg):
        colab.colab_url(url, "main", path)
