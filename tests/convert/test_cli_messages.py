"""`jaxmani convert` on pickles torch refuses: one clean stderr line, no warning, no file left."""

import builtins
import os
import pickle
import warnings
import zipfile
from collections.abc import Callable
from typing import BinaryIO

import numpy as np
import pytest
from flax import traverse_util

torch = pytest.importorskip("torch")

from configs import tiny  # noqa: E402
from jaxmani import params_io  # noqa: E402
from jaxmani.convert import converter, torch_io  # noqa: E402
from jaxmani.errors import UserError  # noqa: E402
from tests.convert.test_converter import vgg_state  # noqa: E402
from tests.test_cli import jaxmani  # noqa: E402


@pytest.fixture(autouse=True)
def cpu_only(monkeypatch):
    """Keeps JAX's no-accelerator notice out of the subprocesses' stderr."""
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")


class RunsExec:
    """Unpickles to a call of builtins.exec: only ever written here, never loaded."""

    def __reduce__(self):
        return (builtins.exec, ("1",))


def convert_vgg(tmp_path, src: str) -> tuple[int, str, str, str]:
    """Runs `jaxmani convert --network=vgg` on `src`; returns (exit code, stdout, stderr, dst)."""
    dst = str(tmp_path / "vgg.msgpack")
    code, out, err = jaxmani("convert", "--network=vgg", f"--src={src}", f"--dst={dst}")
    return code, out, err, dst


def assert_refused(tmp_path, src: str, reason: str) -> None:
    """The command exits 2 with one plain line naming `src` and `reason`, and writes nothing."""
    code, out, err, dst = convert_vgg(tmp_path, src)
    assert code == 2, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"jaxmani: error: {src}: not a loadable PyTorch checkpoint (")
    assert reason in lines[0], lines[0]
    assert "\x1b[" not in err
    assert "warning" not in err.lower()
    assert "Traceback" not in err
    assert out == ""
    assert not os.path.exists(dst)
    assert not os.path.exists(f"{dst}.partial")


def plain_pickle(protocol: int) -> Callable[[BinaryIO], object]:
    """Writes a VGG state dict with pickle.dump (not torch.save) at `protocol`."""
    return lambda f: pickle.dump(vgg_state("features"), f, protocol=protocol)


def runs_exec(protocol: int) -> Callable[[BinaryIO], object]:
    """Writes a dict whose value unpickles to builtins.exec("1") at `protocol`."""
    return lambda f: pickle.dump({"features.0.weight": RunsExec()}, f, protocol=protocol)


FRAME = "(Unsupported operand 149: FRAME, from pickle protocol 4; torch.save writes protocol 2; "
EXEC = "(Unsupported global: GLOBAL builtins.exec; jaxmani loads weights only)"
# name -> (writes the file, part of the one-line error); the "cli" ones also run the command.
REFUSED = {
    "cli_plain_protocol_4": (plain_pickle(4), FRAME + "jaxmani loads weights only)"),
    "plain_protocol_5": (plain_pickle(5), FRAME + "jaxmani loads weights only)"),
    "plain_protocol_2": (plain_pickle(2), "_load_from_bytes, so tensors saved by pickle.dump,"),
    "cli_exec_protocol_3": (runs_exec(3), EXEC),  # Protocol 3 warns, then the global fails.
    "exec_protocol_2": (runs_exec(2), EXEC),
    "cli_random_bytes": (
        lambda f: f.write(np.random.default_rng(0).bytes(4096)),
        "(neither a zip archive nor a pickle)",
    ),
    "empty": (lambda f: None, "(empty file)"),
}


def write_refused(tmp_path, name: str) -> str:
    """Writes the file REFUSED[name] and returns its path."""
    src = str(tmp_path / f"{name}.pth")
    with open(src, "wb") as f:
        REFUSED[name][0](f)
    return src


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refusal_is_one_plain_line_without_warnings(tmp_path, name):
    src = write_refused(tmp_path, name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(UserError) as error:
            torch_io.read_state_dict(src)
    assert caught == []
    message = str(error.value)
    assert message.startswith(f"{src}: not a loadable PyTorch checkpoint (")
    assert REFUSED[name][1] in message
    assert "\n" not in message
    assert "\x1b[" not in message


@pytest.mark.parametrize("name", sorted(n for n in REFUSED if n.startswith("cli_")))
def test_command_refuses_with_one_line(tmp_path, name):
    assert_refused(tmp_path, write_refused(tmp_path, name), REFUSED[name][1])


def test_protocol_4_header_that_loads_converts_silently(tmp_path):
    """torch warns on any protocol but 2 even when it loads the file; the command stays quiet."""
    saved = tmp_path / "saved.pth"
    torch.save(vgg_state("vgg"), saved)
    src = str(tmp_path / "protocol4.pth")
    with zipfile.ZipFile(saved) as old, zipfile.ZipFile(src, "w") as new:
        for info in old.infolist():
            data = old.read(info)
            if info.filename.endswith("/data.pkl"):
                assert data.startswith(b"\x80\x02")
                data = b"\x80\x04" + data[2:]  # Same opcodes, protocol 4 declared.
            new.writestr(info, data)
    code, out, err, dst = convert_vgg(tmp_path, src)
    assert (code, err) == (0, "")
    assert out == f"{dst}: vgg, 260160 params\n"
    config = tiny.get_config()
    variables = params_io.load_variables(dst, "vgg", config)
    expected = converter.convert_state_dict(
        "vgg", {k: v.numpy() for k, v in vgg_state("features").items()}, config, label="vgg"
    )
    flat, flat_expected = (
        traverse_util.flatten_dict(variables),
        traverse_util.flatten_dict(expected),
    )
    assert sorted(flat) == sorted(flat_expected)
    for name, value in flat_expected.items():
        np.testing.assert_array_equal(flat[name], value)
