"""The `jaxmani` command: parses flags, then makes one library call per command.

jaxmani info --config=configs/bird.py
jaxmani pretrain --config=configs/toy_baseline.py --workdir=runs/damsm
jaxmani train --config=configs/toy_baseline.py --workdir=runs/baseline
jaxmani info --workdir=runs/baseline
jaxmani convert --network=generator --src=netG_epoch_100.pth --dst=params/generator.msgpack
jaxmani bench forward --config=configs/bird.py
jaxmani bench train --config=configs/bird.py
"""

import os
import re
import sys
from collections.abc import Callable, Sequence

import ml_collections
from absl import app, flags, logging
from ml_collections import config_flags

import configs
from jaxmani.errors import UserError

_CONFIG = config_flags.DEFINE_config_file(
    "config",
    os.path.join(os.path.dirname(configs.__file__), "default.py"),
    "Config file, e.g. configs/bird.py (default: the packaged configs/default.py).",
    lock_config=True,
)
_NETWORK = flags.DEFINE_string("network", None, "convert: which network the checkpoint holds.")
_SRC = flags.DEFINE_string("src", None, "convert: the PyTorch checkpoint to read.")
_DST = flags.DEFINE_string("dst", None, "convert: the jaxmani params file to write.")
_KEY = flags.DEFINE_string(
    "key", "", "convert: dotted entry of a checkpoint that nests the state dict."
)
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "demo, pretrain, train, info: the run's directory (outputs, checkpoints)."
)
_FCN_ONNX = flags.DEFINE_string(
    "fcn_onnx", None, "prepare: FCN-ResNet101 ONNX file; stores its background masks (cub_birds)."
)
_MANUAL_DIR = flags.DEFINE_string(
    "manual_dir", None, "prepare: cub_birds input directory (BASELINE layout)."
)


def load_config() -> ml_collections.ConfigDict:
    """Returns the config selected by --config, with its overrides."""
    return _CONFIG.value


def require(flag: flags.FlagHolder, command: str) -> str:
    """Returns a flag's value or raises a UserError naming the missing flag."""
    if flag.value is None:
        raise UserError(f"{command} needs --{flag.name}")
    return flag.value


def command_info(args: Sequence[str]) -> None:
    """Prints `params/<network> <count>` per network and the total, or with --workdir the
    latest checkpoint's `step <n>` and `fingerprint <sha256>`."""
    from jaxmani.models import registry

    if _WORKDIR.value is not None:
        from jaxmani.train import checkpoint

        step, digest = checkpoint.latest_fingerprint(_WORKDIR.value)
        print(f"step {step}")
        print(f"fingerprint {digest}")
        return
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
    """Runs a benchmark: `jaxmani bench forward`, `jaxmani bench input` or `jaxmani bench train`."""
    from jaxmani import bench

    config = load_config()
    if list(args) == ["forward"]:
        for line in bench.format_rows(bench.bench_forward(config)):
            print(line)
    elif list(args) == ["input"]:
        print(bench.bench_input(config, config.data.data_dir, config.bench.input_batches))
    elif list(args) == ["train"]:
        for line in bench.format_train(bench.bench_train(config)):
            print(line)
    else:
        raise UserError("bench takes one of: forward, input, train")


def command_prepare(args: Sequence[str]) -> None:
    """Builds the dataset config.data.name offline into config.data.data_dir."""
    from jaxmani.data import prepare

    data = load_config().data
    try:
        path = prepare.prepare_dataset(
            data.name,
            data.data_dir,
            data.builder_config or None,
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


def command_pretrain(args: Sequence[str]) -> None:
    """Trains the DAMSM encoders and prints the test loss and retrieval accuracy."""
    from jaxmani.train import pretrain

    workdir = require(_WORKDIR, "pretrain")
    for name, value in pretrain.pretrain(load_config(), workdir).items():
        print(f"{name} {value:.4f}")
    print(f"wrote {workdir}/text_encoder.msgpack and {workdir}/image_encoder.msgpack")


def command_train(args: Sequence[str]) -> None:
    """Trains (or resumes) the GAN in --workdir."""
    from jaxmani.train import loop

    workdir = require(_WORKDIR, "train")
    state = loop.train(load_config(), workdir)
    print(f"{workdir}: step {int(state.step)}")


HANDLERS: dict[str, Callable[[Sequence[str]], None]] = {
    "info": command_info,
    "convert": command_convert,
    "bench": command_bench,
    "prepare": command_prepare,
    "demo": command_demo,
    "pretrain": command_pretrain,
    "train": command_train,
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
    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.ERROR)  # Library warnings (TFDS, orbax) only on request.
    try:
        main(argv)
    except UserError as e:
        fail(str(e))


def run() -> None:
    """Console-script entry point."""
    app.run(guarded_main, flags_parser=parse_flags)


if __name__ == "__main__":
    run()
