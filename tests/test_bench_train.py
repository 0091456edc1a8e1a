"""`bench train`: one full D + G step in JAX and in the PyTorch restatement, side by side."""

import re

import pytest

pytest.importorskip("torch")

from jaxmani import bench
from jaxmani.errors import UserError
from tests.parity.conftest import small_gan_config

pytestmark = [pytest.mark.parity, pytest.mark.slow]  # Minutes: a full step at 256x256, twice.


def test_bench_train_prints_both_steps_ratio_and_last_line():
    """Rows for both frameworks, the time ratio, FLOP/s, RSS and the machine-readable last line."""
    config = small_gan_config()
    config.train.batch_size = 2
    config.bench.warmup = 1
    config.bench.iters = 1
    result = bench.bench_train(config)
    jax_row, torch_row = result.rows
    assert (jax_row.name, jax_row.framework) == ("train_step", "jax")
    assert (torch_row.name, torch_row.framework) == ("train_step", "torch")
    assert jax_row.seconds > 0 and torch_row.seconds > 0
    assert result.compile_seconds > 0 and result.flops > 0
    assert set(result.peak_rss) == {"jax", "torch"}
    lines = bench.format_train(result)
    assert lines[0].startswith("device: ")
    assert lines[1].startswith("train_step     jax ")
    ratio = re.search(r"jax/torch time (\S+)$", lines[1])
    assert ratio and ratio.group(1) == f"{jax_row.seconds / torch_row.seconds:.2f}"
    assert lines[2].startswith("train_step     torch ")
    assert "GFLOP/s achieved" in lines[4]
    assert lines[5].startswith("peak RSS (each framework in its own process) jax ")
    last = re.fullmatch(r"train_step_seconds (\d+\.\d{6}) peak_rss_mib (\d+)", lines[-1])
    assert last, lines[-1]
    assert float(last.group(1)) == pytest.approx(jax_row.seconds, abs=1e-6)
    assert int(last.group(2)) == result.peak_rss["jax"] // 2**20 > 0


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("data.image_size", 64, "256x256"),
        ("model.image.encoder", "small", "Inception"),
        ("loss.d.sad_weight", 1.0, "switch off loss.d.sad_weight"),
    ],
)
def test_bench_train_refuses_configs_without_a_pytorch_counterpart(field, value, message):
    """Other sizes, the small encoder and the paper's methods have no restated step."""
    config = small_gan_config()
    group, name = field.rsplit(".", 1)
    bench.config_value(config, group)[name] = value
    with pytest.raises(UserError, match=message):
        bench.train_config(config)
