"""The `jaxmani` command: parses flags, then makes one library call per command.

jaxmani info --config=configs/bird.py
jaxmani convert --network=generator --src=netG_epoch_100.pth --dst=params/generator.msgpack
jaxmani bench forward --config=configs/bird.py
"""

import re
import sys
from collections.abc import Callable, Sequence

import ml_collections
from absl import app, flags, logging
from ml_collections import config_flags

from jaxmani.errors import UserError

_CONFIG = config_flags.DEFINE_config_file(
    "config",
    None,
    "Config file, e.g. configs/bird.py (default: configs/default.py).",
    lock_config=True,
)
_NETWORK = flags.DEFINE_string("network", None, "convert: which network the checkpoint holds.")
_SRC = flags.DEFINE_string("src", None, "convert: the PyTorch checkpoint to read.")
_DST = flags.DEFINE_string("dst", None, "convert: the jaxmani params file to write.")
_KEY = flags.DEFINE_string(
    "key", "", "convert: dotted entry of a checkpoint that nests the state dict."
)
_WORKDIR = flags.DEFINE_string("workdir", None, "demo: directory for the demo's data and outputs.")
_DATASET = flags.DEFINE_string("dataset", None, "prepare, bench input: toy_birds or cub_birds.")
_DATA_DIR = flags.DEFINE_string(
    "data_dir", None, "prepare, bench input: TFDS directory (default config.data.data_dir)."
)
_BUILDER_CONFIG = flags.DEFINE_string(
    "builder_config", None, "prepare: builder config, e.g. 64 or 256."
)
_FCN_ONNX = flags.DEFINE_string(
    "fcn_onnx", None, "prepare: FCN-ResNet101 ONNX file; stores its background masks (cub_birds)."
)
_MANUAL_DIR = flags.DEFINE_string(
    "manual_dir", None, "prepare: cub_birds input directory (BASELINE layout)."
)


def load_config() -> ml_collections.ConfigDict:
    """Returns the config selected by --config (with overrides) or the default config."""
    if _CONFIG.value is not None:
        return _CONFIG.value
    from configs import default

    return default.get_config()


def require(flag: flags.FlagHolder, command: str) -> str:
    """Returns a flag's value or raises a UserError naming the missing flag."""
    if flag.value is None:
        raise UserError(f"{command} needs --{flag.name}")
    return flag.value


def command_info(args: Sequence[str]) -> None:
    """Prints `params/<network> <count>` per network, then the total."""
    from jaxmani.models import registry

    config = load_config()
    total = 0
    for name in registry.GAN_NETWORKS:
        count = registry.count_params(registry.abstract_variables(name, config))
        total += count
        print(f"params/{name} {count}")
    print(f"params/total {total}")


def command_convert(args: Sequence[str]) -> None:
    """Converts a PyTorch checkpoint into a jaxmani params file."""
    from jaxmani.convert import converter
    from jaxmani.models import registry

    variables = converter.convert_file(
        require(_NETWORK, "convert"),
        require(_SRC, "convert"),
        require(_DST, "convert"),
        load_config(),
        key=_KEY.value,
    )
    print(f"{_DST.value}: {_NETWORK.value}, {registry.count_params(variables)} params")


def command_bench(args: Sequence[str]) -> None:
    """Runs a benchmark: `jaxmani bench forward` or `jaxmani bench input`."""
    from jaxmani import bench

    config = load_config()
    if list(args) == ["forward"]:
        for line in bench.format_rows(bench.bench_forward(config)):
            print(line)
    elif list(args) == ["input"]:
        with config.unlocked():
            config.data.name = _DATASET.value or config.data.name
        print(
            bench.bench_input(
                config, _DATA_DIR.value or config.data.data_dir, config.bench.input_batches
            )
        )
    else:
        raise UserError("bench takes one of: forward, input")


def command_prepare(args: Sequence[str]) -> None:
    """Builds a TFDS dataset offline into --data_dir."""
    from jaxmani.data import prepare

    data_dir = _DATA_DIR.value or load_config().data.data_dir
    try:
        path = prepare.prepare_dataset(
            require(_DATASET, "prepare"),
            data_dir,
            _BUILDER_CONFIG.value,
            _MANUAL_DIR.value,
            fcn_onnx=_FCN_ONNX.value,
        )
    except (ValueError, FileNotFoundError) as e:
        raise UserError(one_line(e)) from e
    print(f"prepared {path}")


def command_demo(args: Sequence[str]) -> None:
    """Runs the embedded toy demo end to end and prints where its image grid went."""
    from jaxmani import demo

    print(f"wrote {demo.run_demo(load_config(), require(_WORKDIR, 'demo'))}")


HANDLERS: dict[str, Callable[[Sequence[str]], None]] = {
    "info": command_info,
    "convert": command_convert,
    "bench": command_bench,
    "prepare": command_prepare,
    "demo": command_demo,
}


def main(argv: Sequence[str]) -> None:
    """Dispatches to the command named by the first positional argument."""
    if len(argv) < 2 or argv[1] not in HANDLERS:
        raise UserError(f"usage: jaxmani <command> [flags]; commands: {', '.join(HANDLERS)}")
    HANDLERS[argv[1]](argv[2:])


def one_line(error: BaseException) -> str:
    """Flattens an exception message (ml_collections puts hints on new lines) into one line."""
    text = str(error).replace("\\n", " ").replace("\\'", "'")
    return re.sub(r"\s+", " ", text).strip()


def unknown_field_message(argv: Sequence[str], error: BaseException) -> str:
    """Names the --config.* argument with an unknown field and ml_collections' suggestion."""
    text = one_line(error)
    names = re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text)
    wrong = names[0] if names else ""
    args = [a.split("=")[0] for a in argv if a.startswith("--config.")]
    arg = next((a for a in args if wrong in a.split(".")), "--config")
    suggestion = re.search(r'Did you mean "([^"]+)"', text)
    hint = f' (did you mean "{suggestion.group(1)}"?)' if suggestion else ""
    return f"unknown config field {wrong!r} in {arg}{hint}"


def parse_flags(argv: list[str]) -> list[str]:
    """Parses flags and loads the config, turning any mistake into a one-line error."""
    try:
        rest = flags.FLAGS(argv)
        if _CONFIG.value is not None:
            _CONFIG.value.lock()
    except (KeyError, AttributeError) as e:
        fail(unknown_field_message(argv, e))
    except (flags.Error, OSError, ValueError, TypeError) as e:
        fail(f"bad flags: {one_line(e)}")
    return rest


def fail(message: str) -> None:
    """Prints `jaxmani: error: message` on stderr and exits with status 2."""
    print(f"jaxmani: error: {message}", file=sys.stderr)
    sys.exit(2)


def guarded_main(argv: Sequence[str]) -> None:
    """Runs `main`, reporting a UserError as one line instead of a traceback."""
    logging.set_verbosity(logging.WARNING)
    try:
        main(argv)
    except UserError as e:
        fail(str(e))


def run() -> None:
    """Console-script entry point."""
    app.run(guarded_main, flags_parser=parse_flags)


if __name__ == "__main__":
    run()
