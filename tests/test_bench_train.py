"""`bench train`: one full D + G step in JAX and in the PyTorch restatement, side by side."""

import re

import pytest

pytest.importorskip("torch")

from configs import tiny
from jaxmani import bench
from jaxmani.errors import UserError
from tests.parity.conftest import small_gan_config

pytestmark = [pytest.mark.parity, pytest.mark.usefixtures("fast_compilation")]


def check_common_lines(lines: list[str], result: bench.TrainBench, speed: str) -> None:
    """steps/s, compile, FLOP/s, RSS and the machine-readable last line, in this order."""
    jax_row = result.rows[0]
    size = f"{result.image_size}x{result.image_size}"
    assert lines[-5] == f"steps/s at batch {result.batch_size}, {size}: {speed}"
    assert lines[-4] == f"jax compile before the first step {result.compile_seconds:.1f} s"
    assert "GFLOP/s achieved" in lines[-3]
    assert lines[-2].startswith("peak RSS (each framework in its own process) jax ")
    last = re.fullmatch(r"train_step_seconds (\d+\.\d{6}) peak_rss_mib (\d+)", lines[-1])
    assert last, lines[-1]
    assert float(last.group(1)) == pytest.approx(jax_row.seconds, abs=1e-6)
    assert int(last.group(2)) == result.peak_rss["jax"] // 2**20 > 0


def test_bench_train_prints_both_steps_ratio_and_last_line():
    """Rows for both frameworks, the time ratio, steps/s, FLOP/s, RSS and the last line."""
    config = small_gan_config()
    config.model.g.gf_dim = config.model.d.df_dim = 4
    config.model.embedding_dim = 16
    config.model.g.r_num = 1
    config.train.batch_size = 2
    config.bench.warmup = 0
    config.bench.iters = 1
    result = bench.bench_train(config)
    jax_row, torch_row = result.rows
    assert (jax_row.name, jax_row.framework) == ("train_step", "jax")
    assert (torch_row.name, torch_row.framework) == ("train_step", "torch")
    assert jax_row.seconds > 0 and torch_row.seconds > 0
    assert result.compile_seconds > 0 and result.flops > 0
    assert set(result.peak_rss) == {"jax", "torch"} and result.note == ""
    lines = bench.format_train(result)
    assert len(lines) == 8 and lines[0].startswith("device: ")
    assert lines[1].startswith("train_step     jax ")
    ratio = re.search(r"jax/torch time (\S+)$", lines[1])
    assert ratio and ratio.group(1) == f"{jax_row.seconds / torch_row.seconds:.2f}"
    assert lines[2].startswith("train_step     torch ")
    speed = f"jax {1 / jax_row.seconds:.3f}, torch {1 / torch_row.seconds:.3f}"
    check_common_lines(lines, result, speed)


def test_bench_train_at_64_runs_jax_only_with_a_note():
    """A toy-sized config has no restated PyTorch step: JAX's row, steps/s and a note why."""
    config = tiny.get_config()
    config.pretrained.vgg = "missing.msgpack"  # Never read: the frozen weights are random.
    config.bench.warmup = 0
    result = bench.bench_train(config)
    assert [row.framework for row in result.rows] == ["jax"]
    assert set(result.peak_rss) == {"jax"}
    assert "256x256 with the Inception encoder" in result.note and "64x64" in result.note
    lines = bench.format_train(result)
    assert len(lines) == 8 and lines[2] == f"note: {result.note}"
    assert "jax/torch" not in lines[1]
    check_common_lines(lines, result, f"jax {1 / result.rows[0].seconds:.3f}")


def test_bench_train_refuses_the_papers_methods():
    """The restatement's step has none of the paper's methods: bench train times the baseline."""
    config = small_gan_config()
    config.loss.d.sad_weight = 1.0
    with pytest.raises(UserError, match=re.escape("switch off loss.d.sad_weight")):
        bench.train_config(config)


def test_the_note_names_what_bfloat16_means_on_each_side():
    config = tiny.get_config()
    assert bench.bench_note(config, "") == ""
    config.train.dtype = "bfloat16"
    assert bench.bench_note(config, "") == bench.BF16_NOTE
    assert "torch.autocast(bfloat16)" in bench.BF16_NOTE
    assert bench.bench_note(config, "PyTorch is not installed: JAX only") == (
        "PyTorch is not installed: JAX only"
    )
