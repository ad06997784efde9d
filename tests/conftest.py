"""Shared pytest setup: hypothesis profiles.

`ci` (the default) is deterministic: derandomize=True makes every run draw the same examples,
so a failure reproduces on any machine; deadline=None because the shared 2-core CI machine
makes per-example timings meaningless. Set HYPOTHESIS_PROFILE=dev for fresh random draws.
"""
import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


import pytest


@pytest.fixture(scope="module")
def torch_one_thread():
    """Run torch single-threaded for a test module (restored afterwards).

    The tests use tiny shapes, where a second OpenMP thread buys nothing; on a shared 2-core
    machine a busy core turns every parallel op into a ~10 ms barrier wait.
    """
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
