"""Shared pytest setup: hypothesis profiles and the seed every run draws from.

`ci` (the default) draws fresh examples every run: the session picks a random seed (or takes
``--hypothesis-seed=N``), prints it in the header and again after any failure, so
``pytest --hypothesis-seed=N`` replays the same examples on any machine; print_blob also
prints each failure's ``@reproduce_failure`` blob. No example database, so a run depends on
its seed alone; deadline=None because the shared 2-core CI machine makes per-example
timings meaningless. `dev` is the same with the database on (failures replay first).
"""
import os
import random

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


import pytest


@pytest.hookimpl(tryfirst=True)  # before hypothesis' own plugin reads the option
def pytest_configure(config):
    """Give the session a seed: --hypothesis-seed=N if given, else a fresh random one."""
    if config.getoption("hypothesis_seed", None) is None:
        config.option.hypothesis_seed = str(random.SystemRandom().randrange(2**32))


def _replay_line(config) -> str:
    seed = config.getoption("hypothesis_seed")
    return f"hypothesis seed {seed}: replay with  pytest --hypothesis-seed={seed}"


def pytest_report_header(config):
    return _replay_line(config)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if exitstatus != 0:
        terminalreporter.write_line(_replay_line(config))


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


def _tiny_plan():
    """A suite plan small enough for the unit tests (a couple of seconds on a shared 2-core CPU)."""
    from attn_lib.bench.plan import Plan

    return Plan(device="cpu", quick=True, seq_lens=[32, 64], head_dims=[16], tokens=64, model_dim=32,
                min_run_time=0.001, prefill_lens=[16, 32], decode_lens=[32, 64], matmul_sizes=[32], threads=1)


@pytest.fixture
def tiny_plan():
    """A fresh tiny suite plan (tests may change its fields)."""
    pytest.importorskip("torch")
    return _tiny_plan()


@pytest.fixture(scope="session")
def tiny_suite_run():
    """One real run of the benchmark suite on the CPU at tiny sizes, shared by every test that
    reads a run (the suite, recorded.py, the chapter 4 figures). Read-only: deep-copy to change it."""
    pytest.importorskip("torch")
    from attn_lib.bench.measure import run_suite

    return run_suite(_tiny_plan(), progress=False, command="test")
