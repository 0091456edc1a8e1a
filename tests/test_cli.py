"""The `jaxmani` command: exact parameter counts and one-line errors with a non-zero exit."""

import math
import subprocess
import sys

import pytest

NETWORKS = ("generator", "discriminator", "text_encoder", "image_encoder", "vgg")


def jaxmani(*args):
    """Runs the command line in a subprocess and returns (exit code, stdout, stderr)."""
    result = subprocess.run(
        [sys.executable, "-m", "jaxmani.cli", *args], capture_output=True, text=True, timeout=600
    )
    return result.returncode, result.stdout, result.stderr


def test_info_bird_counts():
    code, out, _ = jaxmani("info", "--config=configs/bird.py")
    assert code == 0
    counts = dict(line.split() for line in out.strip().splitlines())
    assert counts["params/generator"] == "15809840"
    assert counts["params/discriminator"] == "71858946"
    assert counts["params/vgg"] == str(
        64 * 3 * 9 + 64 + 64 * 64 * 9 + 64 + 128 * 64 * 9 + 128 + 128 * 128 * 9 + 128
    )
    body = [int(v) for k, v in counts.items() if k != "params/total"]
    assert int(counts["params/total"]) == sum(body)
    assert list(counts)[:5] == [
        "params/generator",
        "params/discriminator",
        "params/text_encoder",
        "params/image_encoder",
        "params/vgg",
    ]


def info_counts(config_path):
    """`jaxmani info` for a config file, as {name: count}; checks the exit code and the total."""
    code, out, err = jaxmani("info", f"--config={config_path}")
    assert code == 0, err
    counts = {k: int(v) for k, v in (line.split() for line in out.strip().splitlines())}
    assert list(counts)[:-1] == [f"params/{name}" for name in NETWORKS]
    assert counts["params/total"] == sum(v for k, v in counts.items() if k != "params/total")
    return counts


def generator_count(size, gf, z, c, emb, r):
    """G parameters written out for image side `size` (BASELINE_SPEC §3.5 generalised)."""
    n = round(math.log2(size // 32))  # Init-stage up-blocks from 4x4 to size / 8.
    ngf = 2 * gf * 2**n
    total = emb * 4 * c + 4 * c + (c + z + emb) * ngf * 32 + 2 * ngf * 32  # ca_net, fc, fc_bn
    total += sum(9 * (ngf >> (i - 1)) * 2 * (ngf >> i) for i in range(1, n + 1))

    def stage(f, att_size):  # att, channel_att, ACM(3f), residual blocks.
        acm = 9 * gf * 128 + 2 * 9 * 128 * 3 * f
        return emb * f + emb * att_size**2 + acm + r * (9 * 3 * f * 6 * f + 9 * 9 * f * f)

    total += stage(2 * gf, size // 8) + 9 * 6 * gf * 2 * gf  # h_net1 and its last up-block
    total += 9 * emb * 2 * gf + 16 * 128 * gf + 2 * gf  # imgUpSample1, imgUpSample2
    total += stage(gf, size // 4) + 9 * 3 * gf * 2 * gf + 9 * gf * 2 * gf  # h_net3
    total += 2 * 9 * gf * 2 * gf  # imgUpSample3, imgUpSample4
    return total + 9 * gf * 128 + 2 * 9 * 128 * gf + 9 * gf * 3  # ACM, img_net


def discriminator_64_count(df, emb):
    """D at 64x64 written out: img_code_s16 and the two heads, no further downsampling."""
    s16 = 16 * (3 * df + df * 2 * df + 2 * df * 4 * df + 4 * df * 8 * df)
    s16_bn = 2 * (2 * df + 4 * df + 8 * df)
    outlogits = 16 * 8 * df + 1
    joint = 9 * (8 * df + emb) * 8 * df + 2 * 8 * df
    return s16 + s16_bn + 2 * outlogits + joint


@pytest.mark.parametrize(
    ("config_path", "g_sizes", "df"),
    [("configs/default.py", (32, 100, 100, 256, 2), 64), ("configs/tiny.py", (4, 8, 8, 16, 1), 4)],
)
def test_info_counts_the_64x64_networks(config_path, g_sizes, df):
    assert generator_count(256, 32, 100, 100, 256, 2) == 15809840  # The formula at bird size.
    counts = info_counts(config_path)
    assert counts["params/generator"] == generator_count(64, *g_sizes)
    assert counts["params/discriminator"] == discriminator_64_count(df, g_sizes[3])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["info", "--config=configs/tiny.py", "--config.model.g.gf_dimm=3"],
            "unknown config field 'gf_dimm' in --config.model.g.gf_dimm (did you mean \"gf_dim\"?)",
        ),
        (["info", "--config=configs/tiny.py", "--config.model.g.gf_dim=x"], "bad flags"),
        (["info", "--config=configs/missing.py"], "configs/missing.py"),
        (["frobnicate"], "commands: info, convert, bench"),
        (["convert", "--network=vgg", "--src=nothing.pth"], "convert needs --dst"),
        (
            ["convert", "--network=vgg", "--src=nothing.pth", "--dst=out.msgpack"],
            "nothing.pth: no such file",
        ),
        (["train", "--config=configs/tiny.py"], "train needs --workdir"),
        (["pretrain", "--config=configs/tiny.py"], "pretrain needs --workdir"),
        (["info", "--workdir=no_such_run"], "no_such_run: no checkpoints"),
        (
            ["train", "--config.data.data_dir=no_such_data", "--workdir=no_such_run"],
            "build it with `jaxmani prepare",
        ),
    ],
)
def test_user_mistakes_give_one_line(args, message):
    code, _, err = jaxmani(*args)
    assert code == 2
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("jaxmani: error: ")
    assert message in lines[0]
