"""Where a compiled step spends its time, per XLA op (`jaxmani bench profile`).

The step runs under `jax.profiler.trace`, whose Perfetto trace holds one event per executed XLA
thunk, named after its HLO instruction. Each name is looked up in the compiled module's HLO text
for the op's kind, output shape and JAX name stack (for example `jit(train_step)/transpose(jvp(
Generator))/h_net3/.../conv_general_dilated`), which gives the network (the stack's first module)
and the direction (backward under `transpose`).
"""

import collections
import dataclasses
import glob
import gzip
import json
import os
import re
import tempfile
import time
from collections.abc import Callable

import jax

CONTROL_FLOW = ("while", "conditional", "call")  # Their events enclose their bodies' op events.
INSTRUCTION = re.compile(r"^\s*(?:ROOT )?%?(?P<name>[\w.\-]+) = (?P<rest>.+)$")
OP_NAME = re.compile(r'op_name="(?P<op_name>[^"]*)"')
FUSION_KIND = re.compile(r"kind=k(?P<kind>\w+)")
BACKEND_KIND = re.compile(r'"kind":"__(?P<kind>\w+?)(?:_fusion)?"')
MODULE = re.compile(r"[A-Z]\w*")  # A flax module's class name in a name-stack entry.
OTHER = "other"  # The network of ops outside every module (losses, optimizer, rng).
UNNAMED = "unnamed"  # Ops that XLA made without a name stack (some weight gradients, copies).


@dataclasses.dataclass(frozen=True)
class HloOp:
    """One instruction of a compiled HLO module."""

    name: str
    opcode: str  # "fusion", "convolution", "dot", "copy", ...
    kind: str  # The opcode, or "fusion/<kind>" (loop, input, output, ynn, ...).
    shape: str  # Output shape with layout, as HLO prints it.
    op_name: str  # JAX name stack; "" when the instruction has none.


@dataclasses.dataclass(frozen=True)
class OpTime:
    """Time of one HLO instruction per step, summed over the threads that ran it."""

    op: HloOp
    seconds: float
    calls: float


@dataclasses.dataclass(frozen=True)
class Profile:
    """A profiled run of `steps` steps."""

    steps: int
    wall_seconds: float  # Per step, measured around the steps under the profiler.
    ops: list[OpTime]  # Slowest first.


def split_shape(rest: str) -> tuple[str, str]:
    """(output shape, the text after it) of an instruction's right-hand side."""
    if not rest.startswith("("):
        shape, _, tail = rest.partition(" ")
        return shape, tail
    depth = 0
    for index, char in enumerate(rest):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0:
            return rest[: index + 1], rest[index + 2 :]
    return rest, ""


def parse_hlo(text: str) -> dict[str, HloOp]:
    """Every instruction of an HLO module's text (`compiled.as_text()`), by name."""
    ops = {}
    for line in text.splitlines():
        match = INSTRUCTION.match(line)
        if match is None:
            continue
        shape, tail = split_shape(match["rest"])
        opcode = tail.split("(", 1)[0]
        kind = opcode
        if opcode == "fusion":
            found = BACKEND_KIND.search(tail) or FUSION_KIND.search(tail)
            kind = f"fusion/{found['kind'].lower()}" if found else opcode
        op_name = OP_NAME.search(tail)
        ops[match["name"]] = HloOp(
            match["name"], opcode, kind, shape, op_name["op_name"] if op_name else ""
        )
    return ops


def where(op_name: str) -> tuple[str, str, str]:
    """(network, "forward" or "backward", the rest of the stack) of a JAX name stack."""
    parts = op_name.split("/")[1:]  # Without the outer jit(...).
    if not parts:
        return UNNAMED, "", ""
    head = parts[0]
    direction = "backward" if head.startswith("transpose(") else "forward"
    module = MODULE.search(head)
    return (module[0] if module else OTHER), direction, "/".join(parts[1:])


def thunk_times(trace_dir: str) -> dict[str, tuple[float, int]]:
    """Summed seconds and count of every complete event of the Perfetto trace in `trace_dir`."""
    paths = glob.glob(os.path.join(trace_dir, "**", "perfetto_trace.json.gz"), recursive=True)
    if len(paths) != 1:
        raise RuntimeError(f"expected one perfetto_trace.json.gz under {trace_dir}, got {paths}")
    with gzip.open(paths[0], "rt") as f:
        events = json.load(f)["traceEvents"]
    totals: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0])
    for event in events:
        if event.get("ph") == "X":
            total = totals[event["name"]]
            total[0] += event.get("dur", 0) * 1e-6  # Microseconds.
            total[1] += 1
    return {name: (seconds, int(count)) for name, (seconds, count) in totals.items()}


def profile_steps(step: Callable[[], None], hlo_text: str, steps: int) -> Profile:
    """Runs `step` (which blocks until done) `steps` times under the profiler; its XLA ops."""
    ops = parse_hlo(hlo_text)
    with tempfile.TemporaryDirectory() as trace_dir:
        with jax.profiler.trace(trace_dir, create_perfetto_trace=True):
            start = time.perf_counter()
            for _ in range(steps):
                step()
            wall = (time.perf_counter() - start) / steps
        times = thunk_times(trace_dir)
    rows = [
        OpTime(ops[name], seconds / steps, count / steps)
        for name, (seconds, count) in times.items()
        if name in ops and ops[name].opcode not in CONTROL_FLOW
    ]
    return Profile(steps, wall, sorted(rows, key=lambda row: -row.seconds))


def grouped(profile: Profile, key: Callable[[OpTime], tuple[str, ...]]) -> list[tuple]:
    """(key..., seconds per step) of the ops grouped by `key`, slowest first."""
    totals: dict[tuple[str, ...], float] = collections.defaultdict(float)
    for row in profile.ops:
        totals[key(row)] += row.seconds
    return sorted(((*k, v) for k, v in totals.items()), key=lambda item: -item[-1])


def format_profile(profile: Profile, title: str, top: int) -> list[str]:
    """The per-network, per-kind and top-`top` op tables of a profile, as lines."""
    total = sum(row.seconds for row in profile.ops)
    lines = [
        f"{title}: {profile.wall_seconds * 1e3:.1f} ms per step wall under the profiler "
        f"({profile.steps} steps), {total * 1e3:.1f} ms of XLA ops per step summed over threads",
        "by network and direction (ms per step, share of op time):",
    ]
    for network, direction, seconds in grouped(profile, lambda r: where(r.op.op_name)[:2]):
        lines.append(f"  {network:20s} {direction:8s} {seconds * 1e3:9.1f} {seconds / total:6.1%}")
    lines.append("by op kind:")
    for kind, seconds in grouped(profile, lambda r: (r.op.kind,)):
        lines.append(f"  {kind:29s} {seconds * 1e3:9.1f} {seconds / total:6.1%}")
    lines.append(f"top {top} ops (ms per step, share, calls per step, kind, where, output shape):")
    for row in profile.ops[:top]:
        network, direction, path = where(row.op.op_name)
        lines.append(
            f"  {row.seconds * 1e3:9.1f} {row.seconds / total:6.1%} x{row.calls:<3g} "
            f"{row.op.kind:16s} {row.op.name} {network} {direction} {path} {row.op.shape}"
        )
    return lines
