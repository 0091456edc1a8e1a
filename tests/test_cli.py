"""The `jaxmani` command: exact parameter counts and one-line errors with a non-zero exit."""

import subprocess
import sys

import pytest


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


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["info", "--config=configs/tiny.py", "--config.model.gf_dimm=3"],
            "unknown config field 'gf_dimm' in --config.model.gf_dimm (did you mean \"gf_dim\"?)",
        ),
        (["info", "--config=configs/tiny.py", "--config.model.gf_dim=x"], "bad flags"),
        (["info", "--config=configs/missing.py"], "configs/missing.py"),
        (["frobnicate"], "commands: info, convert, bench"),
        (["convert", "--network=vgg", "--src=nothing.pth"], "convert needs --dst"),
        (
            ["convert", "--network=vgg", "--src=nothing.pth", "--dst=out.msgpack"],
            "nothing.pth: no such file",
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
