"""Notebook set-up: make attn_lib importable on a fresh Colab, and report the device.

Each chapter's first code cell is :func:`colab_cell` (generated, and checked by a test
against ``_config.yml``). The decisions live here so they can be unit-tested offline.
"""
from __future__ import annotations

import importlib.util
import sys

from . import __version__


def install_ref(version: str = __version__) -> str:
    """The git ref pinned by the install command: the release tag of this version."""
    return f"v{version}"


def install_command(repo_url: str, ref: str | None = None, python: str = sys.executable) -> list[str]:
    """pip command that installs attn_lib from the repository at `ref`, keeping the runtime's torch."""
    if not repo_url.startswith("https://"):
        raise ValueError(f"repo_url must be an https URL, got {repo_url!r}")
    ref = ref or install_ref()
    return [python, "-m", "pip", "install", "-q", "--no-deps", f"git+{repo_url.rstrip('/')}.git@{ref}"]


def needs_install(find_spec=importlib.util.find_spec) -> bool:
    """True when attn_lib cannot be imported (a fresh Colab runtime)."""
    return find_spec("attn_lib") is None


def preferred_dtype(device_type: str, bf16_supported: bool) -> str:
    """Half-precision dtype for kernels: bf16 where supported, fp16 on older GPUs (T4), fp32 on CPU."""
    if device_type == "cpu":
        return "float32"
    return "bfloat16" if bf16_supported else "float16"


def environment() -> dict:
    """Device, its name, the dtype the chapters use on it, and library versions."""
    import torch

    from . import device

    dev = device()
    name = torch.cuda.get_device_name() if dev == "cuda" else "CPU"
    bf16 = dev == "cuda" and torch.cuda.is_bf16_supported()
    return {"device": dev, "name": name, "dtype": preferred_dtype(dev, bf16),
            "torch": torch.__version__, "attn_lib": __version__}


def repo_url_from_config(config_path: str = "_config.yml") -> str:
    """The repository URL, kept in one place: `repository.url` of the book's _config.yml."""
    import yaml

    with open(config_path) as f:
        return yaml.safe_load(f)["repository"]["url"]


def colab_cell(repo_url: str, ref: str | None = None) -> str:
    """Source of every chapter's first code cell (tag it `nbval-ignore-output`)."""
    cmd = install_command(repo_url, ref, python="PYTHON")
    args = ", ".join(repr(a) for a in cmd[1:])
    return (
        "# Set-up: on a fresh Colab runtime install attn_lib from the book's repository;\n"
        "# --no-deps keeps Colab's own torch and Triton. Elsewhere this does nothing.\n"
        "import importlib.util, subprocess, sys\n"
        "if importlib.util.find_spec(\"attn_lib\") is None:\n"
        f"    subprocess.run([sys.executable, {args}], check=True)\n"
        "import attn_lib\n"
        "ENV = attn_lib.setup.environment()\n"
        "print(ENV)"
    )
