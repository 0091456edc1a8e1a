"""The `jaxmani` command: exact parameter counts, help from the command table, config checks."""

import importlib
import math
import os
import shlex
import subprocess
import sys

import pytest

import configs
from configs import tiny
from jaxmani import cli, config_check, progress
from jaxmani.errors import UserError

NETWORKS = ("generator", "discriminator", "text_encoder", "image_encoder", "vgg")


def jaxmani(*args, cwd=None):
    """Runs the command line in a subprocess (in `cwd`) and returns (exit code, stdout, stderr)."""
    result = subprocess.run(
        [sys.executable, "-m", "jaxmani.cli", *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
    )
    return result.returncode, result.stdout, result.stderr


def test_info_bird_counts_by_name_outside_the_repository(tmp_path):
    code, out, _ = jaxmani("info", "--config=bird", cwd=tmp_path)
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


def test_help_lists_every_command_and_exits_0():
    code, out, err = jaxmani("--help")
    assert (code, err) == (0, "")
    listed = [line.split()[0] for line in out.split("Commands:\n")[1].split("\n\n")[0].splitlines()]
    assert listed == [command.name for command in cli.COMMANDS]


@pytest.mark.parametrize("command", cli.COMMANDS, ids=lambda command: command.name)
def test_command_help_shows_flags_groups_and_examples(command):
    text = cli.command_help(command)
    assert text.startswith(f"usage: jaxmani {command.name}")
    for flag in command.flags:
        assert f"--{flag.name}" in text
    assert "--config=<file|name>" in text and "--config.<group>.<field>=<value>" in text
    assert "Config groups read: " + ", ".join(f"config.{g}" for g in command.config_groups) in text
    assert command.examples and all(f"  {example}" in text for example in command.examples)


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_command_help_exits_0(flag):
    code, out, err = jaxmani("bench", flag)
    assert (code, err) == (0, "")
    assert out == cli.command_help(cli.COMMAND_TABLE["bench"]) + "\n"


@pytest.mark.parametrize(
    "example", [e for c in cli.COMMANDS for e in c.examples], ids=lambda e: e.split()[1]
)
def test_every_example_parses(example):
    """The help's examples name their command, take only its flags and a packaged config."""
    name, *args = shlex.split(example)[1:]
    command = cli.COMMAND_TABLE[name]
    parsed = cli.split_args(command, args)
    cli.check_positional(command, parsed.positional)
    for flag in command.flags:
        assert not flag.required or parsed.flags[flag.name] is not None
    cli.check_override_groups(command, parsed.overrides)
    assert cli.resolve_config_path(parsed.config).startswith(str(configs.DIRECTORY))


def test_split_args_reads_both_flag_forms_bools_and_overrides():
    parsed = cli.split_args(
        cli.COMMAND_TABLE["convert"],
        ["--network", "vgg", "--src=a.pth", "--overwrite", "--config=tiny", "--config.seed", "3"],
    )
    assert parsed.flags == {
        "network": "vgg",
        "src": "a.pth",
        "dst": None,
        "key": "",
        "overwrite": True,
    }
    assert (parsed.config, parsed.overrides, parsed.positional) == (
        "tiny",
        ("--config.seed=3",),
        (),
    )
    parsed = cli.split_args(cli.COMMAND_TABLE["convert"], ["--nooverwrite", "-h"])
    assert parsed.flags["overwrite"] is False and parsed.help


@pytest.mark.parametrize("value", ["bird", "bird.py", "configs/bird.py"])
def test_packaged_config_names_resolve_anywhere(value, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.resolve_config_path(value) == str(configs.DIRECTORY / "bird.py")


def test_a_local_config_file_wins_over_a_packaged_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "bird.py").write_text("")
    assert cli.resolve_config_path("configs/bird.py") == "configs/bird.py"
    assert "methods" not in configs.names() and "default" in configs.names()


def test_overrides_apply_without_a_config_flag():
    config = cli.load_config(cli.resolve_config_path(None), ("--config.model.g.gf_dim=3",))
    assert config.model.g.gf_dim == 3
    assert config.is_locked


@pytest.mark.parametrize("name", configs.names())
def test_every_packaged_config_passes_the_checks(name):
    config_check.check_config(importlib.import_module(f"configs.{name}").get_config())


# (field, bad value, part of the message): one row per rule of jaxmani.config_check.
BAD_VALUES = [
    ("model.g.gf_dim", 0, "config.model.g.gf_dim=0: must be an integer >= 1"),
    ("model.d.df_dim", -3, "config.model.d.df_dim=-3: must be an integer >= 1"),
    ("model.embedding_dim", 2.5, "must be an integer >= 1"),
    ("data.words_num", 0, "config.data.words_num=0"),
    ("train.batch_size", 0, "config.train.batch_size=0"),
    ("train.num_steps", -1, "config.train.num_steps=-1: must be an integer >= 0"),
    ("model.text.vocab_size", -1, "config.model.text.vocab_size=-1"),
    ("optim.g.lr", 0.0, "config.optim.g.lr=0.0: must be > 0"),
    ("pretrain.lr", -1e-3, "config.pretrain.lr=-0.001: must be > 0"),
    ("loss.g.mask_weight", -1.0, "config.loss.g.mask_weight=-1.0: must be >= 0 (0 = off)"),
    ("loss.g.edited_region_weight", -1.0, "config.loss.g.edited_region_weight=-1.0: must be >= 0"),
    (
        "loss.g.edited_region_weight",
        2.0,
        "config.loss.g.edited_region_weight=2.0: needs config.loss.g.paired_edit_weight > 0",
    ),
    ("optim.d.b1", 1.0, "config.optim.d.b1=1.0: must be in [0, 1)"),
    ("optim.g.b2", -0.1, "config.optim.g.b2=-0.1: must be in [0, 1)"),
    ("optim.ema_decay", 1.01, "config.optim.ema_decay=1.01: must be in [0, 1]"),
    ("pretrain.lr_decay", 0.0, "config.pretrain.lr_decay=0.0: must be in (0, 1]"),
    ("model.text.dropout", 1.0, "config.model.text.dropout=1.0: must be in [0, 1)"),
    ("loss.g.mask_threshold", 300.0, "must be in [0, 255]"),
    ("loss.d.sad_kernel", 4, "config.loss.d.sad_kernel=4: must be odd and >= 1"),
    ("loss.d.sad_kernel_max", 12, "config.loss.d.sad_kernel_max=12: must be odd, or <= 9"),
    ("data.image_size", 96, "config.data.image_size=96: the networks build for 64, 128, 256"),
    ("model.image.encoder", "vit", "config.model.image.encoder='vit': choose one of"),
    ("data.name", "mnist", "config.data.name='mnist': choose one of 'toy_birds', 'cub_birds'"),
    ("data.builder_config", "32", "config.data.builder_config='32': unknown config '32'"),
    ("loss.g.mask_source", "fcm", "config.loss.g.mask_source='fcm': choose one of 'fcn', 'gt'"),
    ("loss.g.gm_mode", "all", "config.loss.g.gm_mode='all': choose one of '', 'region', 'seed'"),
    ("loss.d.sad_filter", "median", "config.loss.d.sad_filter='median': choose one of 'box'"),
    ("evaluate.sweep_images", 0, "config.evaluate.sweep_images=0: must be an integer >= 1"),
]


@pytest.mark.parametrize(("name", "value", "message"), BAD_VALUES, ids=[r[0] for r in BAD_VALUES])
def test_a_bad_value_names_the_field_and_what_is_allowed(name, value, message):
    config = tiny.get_config()
    *path, last = name.split(".")
    node = config
    for key in path:
        node = node[key]
    with config.ignore_type():
        node[last] = value
    with pytest.raises(UserError) as error:
        config_check.check_config(config)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_a_missing_field_points_at_the_default_config():
    config = tiny.get_config()
    del config.bench["iters"]
    with pytest.raises(UserError, match=r"config.bench.iters is missing; start your config from"):
        config_check.check_config(config)


def test_stage_prints_start_heartbeat_and_done_lines(capsys, monkeypatch):
    monkeypatch.setattr(progress, "HEARTBEAT_SECONDS", 0.05)
    with progress.stage("demo", "waiting"):
        progress.time.sleep(0.3)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "demo: waiting ..."
    assert 2 <= len(lines[1:-1]) <= 6
    assert all(
        line.startswith("demo: waiting ... ") and line.endswith(" s") for line in lines[1:-1]
    )
    assert lines[-1].startswith("demo: waiting: done in ")
    with pytest.raises(KeyError), progress.stage("demo", "failing", heartbeat=False):
        raise KeyError("x")
    assert capsys.readouterr().err == "demo: failing ...\n"


def test_an_unwritable_directory_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(cli.os, "access", lambda path, mode: path != str(tmp_path))
    with pytest.raises(UserError, match=r"--workdir=.*/run: .* is not writable; give another"):
        cli.check_writable_dir(str(tmp_path / "run"), "--workdir")
    (tmp_path / "ok").mkdir()
    cli.check_writable_dir(str(tmp_path / "ok" / "run" / "deeper"), "--workdir")


@pytest.mark.parametrize(
    ("tunables", "expected"),
    [
        (None, "glibc.malloc.hugetlb=1"),
        ("glibc.malloc.arena_max=2", "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1"),
        ("glibc.malloc.hugetlb=0", None),  # The user's own choice stays.
    ],
)
def test_huge_page_environment_adds_the_tunable_once(tunables, expected, monkeypatch):
    monkeypatch.setattr(cli.os, "confstr", lambda name: "glibc 2.36")
    environ = {"HOME": "/h"} if tunables is None else {"HOME": "/h", "GLIBC_TUNABLES": tunables}
    result = cli.huge_page_environment(environ)
    if expected is None:
        assert result is None
    else:
        assert result == {"HOME": "/h", "GLIBC_TUNABLES": expected}


def test_huge_page_environment_is_none_without_glibc(monkeypatch):
    monkeypatch.setattr(cli.os, "confstr", lambda name: None)
    assert cli.huge_page_environment({}) is None


def test_the_command_reexecutes_itself_with_huge_pages_once():
    if cli.huge_page_environment({}) is None:
        pytest.skip("not glibc")
    code = (
        "import os, sys; print(os.environ.get('GLIBC_TUNABLES'), flush=True); "
        "from jaxmani import cli; sys.argv = ['jaxmani', '--help']; cli.run()"
    )
    environ = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=environ, timeout=120
    )
    lines = result.stdout.splitlines()
    assert result.returncode == 0, result.stderr
    assert lines[:2] == ["None", cli.HUGE_PAGE_TUNABLE]
    assert lines[2].startswith("usage: jaxmani")
