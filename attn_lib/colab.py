"""Runtime set-up for the notebooks: make attn_lib importable on a fresh Colab, report the device.

Every notebook's first code cell is :func:`colab_cell` (stamped by ``tools/set_up_cells.py``
from ``_config.yml``, checked by ``tests/test_notebook_conventions.py``). The decisions it
depends on (install or not, which command, which dtype on which device, and the library's
one dtype-name converter, :func:`torch_dtype`) and the Colab launch URL live here so they
are unit-tested offline. Used by every chapter and appendix;
the book's config and table-of-contents readers are in :mod:`attn_lib.book`.
"""
from __future__ import annotations

import importlib.util
import re
import sys

from . import __version__
from ._checks import check_bool, check_choice, check_str, check_type

#: First compute capability with native bfloat16 tensor cores (Ampere, sm_80).
_BF16_MIN_CAPABILITY = (8, 0)


def install_ref(version: str = __version__) -> str:
    """The git ref pinned by the install command: the release tag of this version, e.g. 'v0.2.0'."""
    if not re.fullmatch(r"\d+(\.\d+)*([a-z0-9.+-]*)", check_str("version", version)):
        raise ValueError(f"version must look like '1.2.3', got {version!r}")
    return f"v{version}"


def install_command(repo_url: str, ref: str | None = None, python: str = sys.executable) -> list[str]:
    """pip command that installs attn_lib from the repository at `ref`, keeping the runtime's torch.

    ``--no-deps``: Colab's torch and Triton are built for its GPU and must not be replaced.
    """
    if not isinstance(repo_url, str) or not repo_url.startswith("https://"):
        raise ValueError(f"repo_url must be an https URL, got {repo_url!r}")
    ref = install_ref() if ref is None else check_str("ref", ref)
    python = check_str("python", python)
    url = repo_url.rstrip("/").removesuffix(".git")
    return [python, "-m", "pip", "install", "-q", "--no-deps", f"git+{url}.git@{ref}"]


def needs_install(find_spec=importlib.util.find_spec) -> bool:
    """True when attn_lib cannot be imported (a fresh Colab runtime)."""
    if not callable(find_spec):
        raise TypeError(f"find_spec must be callable, got {type(find_spec).__name__}")
    return find_spec("attn_lib") is None


def bf16_native(capability: tuple[int, int] | None) -> bool:
    """Whether a CUDA device of this compute capability has bf16 tensor cores (sm_80+).

    Not ``torch.cuda.is_bf16_supported()``: it also answers True on a T4 (sm_75), where
    bf16 is only emulated and Triton's ``tl.dot`` rejects it.
    """
    if capability is None:
        return False
    if len(capability) != 2:
        raise ValueError(f"capability must be (major, minor), got {capability!r}")
    return tuple(capability) >= _BF16_MIN_CAPABILITY


def preferred_dtype(device_type: str, bf16_supported: bool) -> str:
    """Dtype for kernels: bf16 where native (A100, H100), fp16 on older GPUs (T4), fp32 on CPU."""
    check_choice("device_type", device_type, ("cpu", "cuda"))
    bf16_supported = check_bool("bf16_supported", bf16_supported)
    if device_type == "cpu":
        return "float32"
    return "bfloat16" if bf16_supported else "float16"


def dtype_for(device_type: str, capability: tuple[int, int] | None = None) -> str:
    """The chapters' dtype for a device: cpu → float32, T4 (7, 5) → float16, H100 (9, 0) → bfloat16."""
    return preferred_dtype(device_type, device_type == "cuda" and bf16_native(capability))


#: The float dtype names the library uses (ENV["dtype"], the suite's plans and JSON), as torch spells them.
FLOAT_DTYPES = ("float32", "float64", "float16", "bfloat16")


def torch_dtype(dtype):
    """The torch dtype of a name ('bfloat16' -> torch.bfloat16); a torch float dtype passes through.

    The library's one name -> torch dtype converter (the suite's plans, tiny_gpt, the claims).
    """
    import torch

    if isinstance(dtype, torch.dtype):
        if not dtype.is_floating_point:
            raise TypeError(f"dtype must be a torch float dtype, got {dtype}")
        return dtype
    if isinstance(dtype, str) and dtype in FLOAT_DTYPES:
        return getattr(torch, dtype)
    raise TypeError(f"dtype must be a torch float dtype or one of {list(FLOAT_DTYPES)}, got {dtype!r}")


def environment() -> dict:
    """Device, its name, the dtype the chapters use on it, and library versions."""
    import torch

    from . import device

    dev = device()
    name = torch.cuda.get_device_name() if dev == "cuda" else "CPU"
    capability = torch.cuda.get_device_capability() if dev == "cuda" else None
    return {"device": dev, "name": name, "dtype": dtype_for(dev, capability),
            "torch": torch.__version__, "attn_lib": __version__}


def colab_url(repo_url: str, branch: str, notebook_path: str,
              colab: str = "https://colab.research.google.com") -> str:
    """The Colab launch URL the HTML book's rocket button points at for a notebook.

    Mirrors sphinx-book-theme: <colab>/github/<org>/<repo>/blob/<branch>/<path in the repo>.
    """
    m = re.fullmatch(r"https://github\.com/([^/]+)/([^/]+?)(?:\.git)?/?", repo_url or "")
    if m is None:
        raise ValueError(f"repo_url must be https://github.com/<org>/<repo>, got {repo_url!r}")
    check_str("branch", branch), check_str("notebook_path", notebook_path)
    if not notebook_path.endswith(".ipynb") or notebook_path.startswith("/"):
        raise ValueError(f"notebook_path must be a relative .ipynb path, got {notebook_path!r}")
    org, repo = m.groups()
    return f"{colab.rstrip('/')}/github/{org}/{repo}/blob/{branch}/{notebook_path}"


def describe(env: dict) -> str:
    """One short line for a notebook's first output: 'cpu (CPU), float32, torch 2.13.0'."""
    check_type("env", env, dict, "a dict from environment()")
    missing = [k for k in ("device", "name", "dtype", "torch") if k not in env]
    if missing:
        raise ValueError(f"env lacks {missing}; pass colab.environment()")
    return f"{env['device']} ({env['name']}), {env['dtype']}, torch {env['torch']}"


def colab_cell(repo_url: str, ref: str | None = None) -> str:
    """Source of every notebook's first code cell (tags: nbval-ignore-output, remove-input).

    It must run before attn_lib exists, so it uses only the standard library; its lines fit
    the page column. Changing its text means regenerating every notebook's first cell
    (``tools/set_up_cells.py``; the conventions test compares it).
    """
    cmd = install_command(repo_url, ref, python="PYTHON")
    flags = ", ".join(repr(a) for a in cmd[1:-1])
    repo, at_ref = cmd[-1].removeprefix("git+").rsplit(".git@", 1)
    return (
        "# Set-up: on a fresh Colab runtime, install attn_lib (--no-deps keeps Colab's\n"
        "# own torch and Triton). Elsewhere it does nothing. Hidden in the HTML book.\n"
        "import importlib.util, subprocess, sys\n"
        f"REPO = {repo!r}\n"
        "if importlib.util.find_spec(\"attn_lib\") is None:\n"
        f"    pip = [sys.executable, {flags}]\n"
        f"    subprocess.run(pip + [f\"git+{{REPO}}.git@{at_ref}\"], check=True)\n"
        "import attn_lib.colab  # binds attn_lib for later cells too\n"
        "ENV = attn_lib.colab.environment()\n"
        "print(attn_lib.colab.describe(ENV))"
    )
