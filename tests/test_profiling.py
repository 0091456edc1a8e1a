"""`jaxmani bench profile`'s pieces: the HLO parser, the name-stack reader, the trace reader, and
a real profile of a small compiled flax model."""

import gzip
import json
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmani import bench, profiling

HLO = """HloModule jit_step, entry_computation_layout={(f32[2,8]{1,0})->f32[]}

%fused_computation (param_0: f32[2,8]) -> f32[2,8] {
  %param_0 = f32[2,8]{1,0} parameter(0)
  ROOT %exponential.1 = f32[2,8]{1,0} exponential(%param_0), metadata={op_name="jit(step)/exp"}
}

ENTRY %main (x: f32[2,8]) -> f32[] {
  %x = f32[2,8]{1,0} parameter(0)
  %convolution.3 = f32[2,4,4,8]{3,2,1,0} convolution(%x, %x), window={size=3x3}, \
metadata={op_name="jit(step)/transpose(jvp(Generator))/h_net3/conv_general_dilated"}
  %loop_fusion = f32[2,8]{1,0} fusion(%x), kind=kLoop, calls=%fused_computation, \
metadata={op_name="jit(step)/jvp(Discriminator.cond_logits)/COND_DNET/mul"}
  %ynn_fusion.2 = f32[8]{0} fusion(%x), kind=kCustom, calls=%fused_computation, \
backend_config={"fusion_config":{"kind":"__ynn_fusion"}}
  %tuple.1 = (f32[2]{0}, (s32[], f32[3]{0})) tuple(%x, %x)
  ROOT %reduce.5 = f32[] reduce(%x), dimensions={0,1}
}
"""


def test_parse_hlo_reads_names_opcodes_kinds_shapes_and_name_stacks():
    ops = profiling.parse_hlo(HLO)
    conv = ops["convolution.3"]
    assert (conv.opcode, conv.kind, conv.shape) == (
        "convolution",
        "convolution",
        "f32[2,4,4,8]{3,2,1,0}",
    )
    assert conv.op_name == "jit(step)/transpose(jvp(Generator))/h_net3/conv_general_dilated"
    assert ops["loop_fusion"].kind == "fusion/loop"
    assert ops["ynn_fusion.2"].kind == "fusion/ynn" and ops["ynn_fusion.2"].op_name == ""
    assert ops["tuple.1"].shape == "(f32[2]{0}, (s32[], f32[3]{0}))"
    assert ops["tuple.1"].opcode == "tuple"
    assert ops["reduce.5"].opcode == "reduce"  # a ROOT instruction
    assert ops["exponential.1"].op_name == "jit(step)/exp"  # fused instructions are listed too


@pytest.mark.parametrize(
    ("op_name", "expected"),
    [
        (
            "jit(step)/transpose(jvp(Generator))/h_net3/conv_general_dilated",
            ("Generator", "backward", "h_net3/conv_general_dilated"),
        ),
        (
            "jit(step)/jvp(Discriminator.cond_logits)/COND_DNET/mul",
            ("Discriminator", "forward", "COND_DNET/mul"),
        ),
        (
            "jit(step)/TextEncoder/forward/dot_general",
            ("TextEncoder", "forward", "forward/dot_general"),
        ),
        ("jit(step)/jit(_threefry_split)/train_step", ("other", "forward", "train_step")),
        ("jit(step)/transpose(jvp())/add_any", ("other", "backward", "add_any")),
        ("", ("unnamed", "", "")),
    ],
)
def test_where_reads_the_network_and_direction(op_name, expected):
    assert profiling.where(op_name) == expected


def test_thunk_times_sums_complete_events_per_name(tmp_path):
    events = [
        {"ph": "M", "name": "process_name", "pid": 1},
        {"ph": "X", "name": "ynn_fusion.2", "dur": 1500.0, "ts": 0},
        {"ph": "X", "name": "ynn_fusion.2", "dur": 500.0, "ts": 9},
        {"ph": "X", "name": "loop_fusion", "dur": 250.0, "ts": 3},
        {"ph": "i", "name": "loop_fusion", "ts": 4},
    ]
    folder = tmp_path / "plugins" / "profile" / "run"
    folder.mkdir(parents=True)
    with gzip.open(folder / "perfetto_trace.json.gz", "wt") as f:
        json.dump({"displayTimeUnit": "ns", "traceEvents": events}, f)
    assert profiling.thunk_times(str(tmp_path)) == {
        "ynn_fusion.2": (pytest.approx(2e-3), 2),
        "loop_fusion": (pytest.approx(2.5e-4), 1),
    }


class Block(nn.Module):
    """A convolution and a dense layer, so that the profile has two modules."""

    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Conv(32, (3, 3), name="conv")(x))
        return nn.Dense(4, name="head")(x.mean(axis=(1, 2)))


class Net(nn.Module):
    """Block under a module name of its own."""

    @nn.compact
    def __call__(self, x):
        return Block(name="block")(x)


def test_profile_of_a_compiled_gradient_names_its_convolutions_and_formats():
    x = jnp.asarray(np.random.default_rng(0).standard_normal((4, 32, 32, 16)), jnp.float32)
    params = Net().init(jax.random.PRNGKey(0), x)
    grad = jax.jit(jax.grad(lambda p: jnp.sum(Net().apply(p, x) ** 2)))
    compiled = grad.lower(params).compile()
    ops = profiling.parse_hlo(compiled.as_text())

    profile = profiling.profile_steps(
        lambda: jax.block_until_ready(compiled(params)), compiled.as_text(), 3
    )
    assert profile.steps == 3 and profile.wall_seconds > 0 and profile.ops
    assert all(row.op.name in ops and row.seconds >= 0 and row.calls > 0 for row in profile.ops)
    assert [row.seconds for row in profile.ops] == sorted(
        (row.seconds for row in profile.ops), reverse=True
    )
    # The ops ran inside the timed steps, on at most as many threads as the machine has cores.
    assert sum(row.seconds for row in profile.ops) <= profile.wall_seconds * os.cpu_count()
    places = {profiling.where(row.op.op_name)[:2] for row in profile.ops}
    assert ("Net", "forward") in places and ("Net", "backward") in places
    forward_conv = [
        row for row in profile.ops if row.op.op_name.endswith("conv/conv_general_dilated")
    ]
    assert forward_conv and forward_conv[0].op.shape.startswith("f32[4,32,32,32]")

    lines = profiling.format_profile(profile, "grad", top=3)
    assert (
        lines[0].startswith("grad: ")
        and "ms per step wall under the profiler (3 steps)" in lines[0]
    )
    assert lines[1] == "by network and direction (ms per step, share of op time):"
    top = lines.index("top 3 ops (ms per step, share, calls per step, kind, where, output shape):")
    assert len(lines) == top + 1 + 3
    assert profile.ops[0].op.name in lines[top + 1]
    shares = [float(line.split()[-1].rstrip("%")) for line in lines[2 : lines.index("by op kind:")]]
    assert sum(shares) == pytest.approx(100.0, abs=0.1 * len(shares))


def test_method_inputs_add_the_mask_and_the_paired_edit_fields():
    from configs import toy_demo

    config = bench.seeded_config(toy_demo.get_config())
    config.train.batch_size = 3
    batch = bench.train_batch(config, 0)
    completed = bench.method_inputs(config, batch)
    assert set(completed) - set(batch) == {
        "mask",
        "edit_image",
        "edit_caption",
        "edit_caption_length",
    }
    assert completed["mask"].shape == (3, 64, 64, 1)
    assert set(np.unique(completed["mask"])) <= {0.0, 1.0}
    np.testing.assert_array_equal(completed["edit_caption"], batch["caption"][::-1])
    config.loss.g.mask_source = "hm"
    config.loss.g.paired_edit_weight = 0.0
    assert set(bench.method_inputs(config, batch)) == set(batch)
