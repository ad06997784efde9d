"""Run one function on P fresh processes joined by torch.distributed (chapter 5).

:func:`launch` starts ``world_size`` processes with ``torch.multiprocessing`` (forked
from a clean forkserver, never from the caller, which may hold threads), joins them
into one process group and returns what each rank's function returned, in rank
order. It is what :mod:`attn_lib.ring` runs on, and what makes a distributed run safe
to call from a notebook or a test:

- the rendezvous store lives in the calling process and binds port 0, so the OS picks a
  free port (no fixed port to collide with another run);
- a rank that raises fails the whole call with ``RankError`` naming the rank and its
  traceback; the other ranks are terminated, not left waiting for a message;
- a rank that hangs fails the call after ``timeout`` seconds with ``RankTimeout`` naming
  it (each rank reports the step it reached, so the laggard is the one that is named);
- every process is joined (or killed) before the call returns, whatever happened.

Arguments and results cross the process boundary as ``torch.save`` bytes: any dtype, and
nothing depends on a shared-memory file descriptor outliving its process.
"""
from __future__ import annotations

import datetime
import io
import os
import queue
import time
import traceback
from typing import Callable, Sequence

from ._checks import check_choice, check_int_in, check_positive, check_positive_int

#: Seconds a whole distributed call may take before it is called hung.
TIMEOUT_S = 120.0

#: More ranks than this is a typo, not an experiment: each rank is a process.
MAX_WORLD_SIZE = 64


class RankError(RuntimeError):
    """A rank raised: the message names the rank and carries its traceback."""

    def __init__(self, rank: int, detail: str):
        super().__init__(f"rank {rank} failed:\n{detail}")
        self.rank = rank


class RankTimeout(TimeoutError):
    """Some rank did not finish within the timeout; `ranks` are the ones that lagged."""

    def __init__(self, ranks: list[int], timeout: float, steps: list[int]):
        lag = ", ".join(str(r) for r in ranks)
        super().__init__(f"rank {lag} did not finish within {timeout:g} s "
                         f"(step reached by each rank: {steps})")
        self.ranks = ranks


def check_world_size(world_size) -> int:
    """world_size: a positive int (the _checks rule) no larger than MAX_WORLD_SIZE."""
    n = check_positive_int("world_size", world_size)
    return check_int_in("world_size", n, 1, MAX_WORLD_SIZE + 1)


def dumps(obj) -> bytes:
    buf = io.BytesIO()
    import torch

    torch.save(obj, buf)
    return buf.getvalue()


def loads(data: bytes):
    import torch

    return torch.load(io.BytesIO(data), weights_only=False)


# ---------------------------------------------------------------------- inside a rank
_PROGRESS = None  # this rank's slot in the shared step counter (set by _entry)


def report_step(step: int) -> None:
    """Record the step this rank has reached (what a timeout message reports)."""
    if _PROGRESS is not None:
        _PROGRESS[0][_PROGRESS[1]] = step


def _entry(rank, world_size, fn, arg, backend, port, timeout, results, progress):
    """Body of every spawned process: join the group, run fn, send back bytes, leave."""
    global _PROGRESS
    import torch
    import torch.distributed as dist

    _PROGRESS = (progress, rank)
    try:
        torch.set_num_threads(1)  # P processes share the machine's cores
        if backend == "nccl":
            torch.cuda.set_device(rank)
        # Outlast the caller's deadline, so a hang is reported by the caller (which can
        # tell which rank is behind) rather than as a collective's timeout in a peer.
        late = datetime.timedelta(seconds=timeout + 60)
        store = dist.TCPStore("127.0.0.1", port, world_size + 1, False, timeout=late)
        dist.init_process_group(backend, store=store, rank=rank, world_size=world_size,
                                timeout=late)
        try:
            out = fn(rank, world_size, loads(arg))
        except BaseException:  # noqa: BLE001 - report before the group goes down, so
            results.put((rank, "error", traceback.format_exc()))  # this rank is first
            return
        finally:
            dist.destroy_process_group()
        results.put((rank, "ok", dumps(out)))
    except BaseException:  # noqa: BLE001 - everything goes back to the caller, named
        results.put((rank, "error", traceback.format_exc()))


# ------------------------------------------------------------------------- the caller
def _context():
    """A forkserver context that has imported torch and attn_lib.ring once, when it can.

    Importing torch costs seconds of CPU; a forkserver pays it once per session, and
    each rank is a fork of that clean, single-threaded server (not of the caller).
    Platforms without forkserver spawn a fresh interpreter per rank.
    """
    import torch.multiprocessing as mp

    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["torch", "torch.distributed", "attn_lib.ring"])
    return ctx


def _stop(procs) -> None:
    """Terminate, then kill, then join every process still alive."""
    procs = [p for p in procs if p.pid is not None]  # a failed start leaves some
    for p in procs:
        if p.is_alive():
            p.terminate()
    for p in procs:
        p.join(5)
        if p.is_alive():
            p.kill()
            p.join()


def launch(fn: Callable, world_size: int, args: Sequence, *, backend: str = "gloo",
           timeout: float = TIMEOUT_S) -> list:
    """[fn(rank, world_size, args[rank]) for every rank], each run in its own process.

    `fn` must be an importable module-level function (spawned processes import it by
    name). Raises RankError if a rank raises, RankTimeout if some rank has not finished
    after `timeout` seconds; in every case all processes are gone when this returns.
    """
    import torch.distributed as dist

    world_size = check_world_size(world_size)
    if len(args) != world_size:
        raise ValueError(f"args must hold one entry per rank ({world_size}), "
                         f"got {len(args)}")
    check_choice("backend", backend, ("gloo", "nccl"))
    timeout = check_positive("timeout", timeout)
    ctx = _context()
    # port 0: the OS picks a free port, and the store holds it for the whole call
    store = dist.TCPStore("127.0.0.1", 0, world_size + 1, True, wait_for_workers=False,
                          timeout=datetime.timedelta(seconds=timeout))
    results, progress = ctx.Queue(), ctx.Array("i", world_size)
    procs = [ctx.Process(target=_entry, daemon=True,  # daemon: dies with the caller
                         args=(r, world_size, fn, dumps(args[r]), backend, store.port,
                               timeout, results, progress))
             for r in range(world_size)]
    try:
        for p in procs:
            p.start()
        return _collect(procs, results, progress, timeout)
    except (RankError, RankTimeout) as err:
        err.pids = [p.pid for p in procs]  # so a caller can check that none survived
        raise
    finally:
        _stop(procs)
        results.close()
        del store


#: What a rank says when a peer it talks to has died: a symptom, not the cause.
_PEER_GONE = ("Connection closed by peer", "Connection reset by peer", "remote worker")


def _root_cause(results, rank: int, payload: str, wait: float = 1.0):
    """The first error that is not just a peer's disconnection (if one arrives soon)."""
    if not any(m in payload for m in _PEER_GONE):
        return rank, payload
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            r, status, text = results.get(timeout=0.05)
        except queue.Empty:
            continue
        if status == "error" and not any(m in text for m in _PEER_GONE):
            return r, text
    return rank, payload


def _collect(procs, results, progress, timeout: float) -> list:
    """One result per rank; raise on the first error, a silent death or the deadline."""
    out, deadline = {}, time.monotonic() + timeout
    while len(out) < len(procs):
        try:
            rank, status, payload = results.get(timeout=0.05)
        except queue.Empty:
            dead = [r for r, p in enumerate(procs)
                    if r not in out and p.exitcode is not None]
            if dead:  # exited without a word (killed, os._exit)? give it a moment
                time.sleep(0.2)
                if results.empty():
                    r = dead[0]
                    raise RankError(r, f"process exited with code {procs[r].exitcode} "
                                       "without a result")
            if time.monotonic() > deadline:
                steps = list(progress[:])
                lag = [r for r in range(len(procs)) if r not in out]
                low = min(steps[r] for r in lag)
                raise RankTimeout([r for r in lag if steps[r] == low], timeout, steps)
            continue
        if status == "error":
            rank, payload = _root_cause(results, rank, payload)
            raise RankError(rank, payload)
        out[rank] = loads(payload)
    for p in procs:
        p.join(5)
    return [out[r] for r in range(len(procs))]


# ----------------------------------------------------------------------- test workers
def raise_on_rank(rank: int, world_size: int, arg):
    """Diagnostic worker: rank `arg['rank']` raises, the others wait in a barrier."""
    import torch.distributed as dist

    if rank == arg["rank"]:
        raise ValueError(f"deliberate failure on rank {rank}")
    dist.barrier()
    return rank


def hang_on_rank(rank: int, world_size: int, arg):
    """Diagnostic worker: every rank reaches step 1, then rank `arg['rank']` sleeps."""
    import torch.distributed as dist

    report_step(1)
    if rank == arg["rank"]:
        time.sleep(arg.get("seconds", 3600))
    else:
        report_step(2)
    dist.barrier()
    return os.getpid()
