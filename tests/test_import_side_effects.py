"""Importing attn_lib's modules has no side effects: no environment change, no module reload,
no GPU query (issue: the Triton module used to set TRITON_INTERPRET and reload triton.language
at import, and Triton 3.2's module-level autotuner raised "0 active drivers" on a CPU).

Each check runs in a fresh interpreter, so modules imported by other tests do not hide it.
"""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PROBE = r"""
import importlib, json, os, pkgutil, sys
before = dict(os.environ)
reloads, gpu_queries = [], []
real_reload = importlib.reload
importlib.reload = lambda m: (reloads.append(m.__name__), real_reload(m))[1]
try:
    import torch
    for name in ("is_available", "device_count", "get_device_capability", "get_device_name"):
        real = getattr(torch.cuda, name)
        setattr(torch.cuda, name, (lambda n, f: lambda *a, **k: (gpu_queries.append(n), f(*a, **k))[1])(name, real))
except ImportError:
    pass
import attn_lib
names = sorted(m.name for m in pkgutil.walk_packages(attn_lib.__path__, "attn_lib.")
               if m.name.split(".")[-1] != "__main__")
failed = {}
for name in names:
    try:
        importlib.import_module(name)
    except ImportError as err:  # an optional dependency missing here: not a side effect
        failed[name] = repr(err)
changed = sorted(k for k in set(before) | set(os.environ) if before.get(k) != os.environ.get(k))
print(json.dumps({"modules": names, "failed": failed, "env_changed": changed,
                  "reloads": reloads, "gpu_queries": gpu_queries}))
"""


def _probe(env_extra=None):
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env.update({"PYTHONPATH": ROOT, **(env_extra or {})})
    run = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env,
                         cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def report():
    return _probe()


def test_every_module_was_imported(report):
    assert "attn_lib.triton_flash" in report["modules"] and "attn_lib.torch_impl" in report["modules"]
    assert not report["failed"], report["failed"]


def test_imports_leave_the_environment_unchanged(report):
    assert report["env_changed"] == []


def test_imports_reload_no_module(report):
    assert report["reloads"] == []


def test_imports_query_no_gpu(report):
    assert report["gpu_queries"] == []


def test_a_user_set_triton_interpret_is_left_alone():
    assert _probe({"TRITON_INTERPRET": "0"})["env_changed"] == []
