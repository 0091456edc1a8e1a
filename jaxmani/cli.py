"""The `jaxmani` command line: one table entry per command, from which parsing and help come.

Every command reads the config selected by `--config` (a file, or a packaged config's name such as
`bird`; default: the packaged default) with single-field overrides `--config.<group>.<field>=v`,
checks it once (jaxmani.config_check) and makes one library call. A user mistake is one line
`jaxmani: error: ...` on stderr and exit status 2; Ctrl-C is `jaxmani: interrupted` and 130.
"""

import dataclasses
import json
import os
import re
import sys
import textwrap
from collections.abc import Callable, Sequence
from typing import Any

import ml_collections
from absl import flags, logging
from ml_collections import config_flags

import configs
from jaxmani import interrupts
from jaxmani.errors import UserError
from jaxmani.progress import stage

USAGE_STATUS = 2
INTERRUPTED_STATUS = 130
VERBOSITY_NAMES = ("debug", "info", "warning", "error", "fatal")
HUGE_PAGE_TUNABLE = "glibc.malloc.hugetlb=1"


@dataclasses.dataclass(frozen=True)
class Flag:
    """A command's own flag: `--name=value`, `--name value`; a bool one `--name` / `--noname`."""

    name: str
    help: str
    default: str | int | bool | None = None
    required: bool = False
    output_dir: bool = False  # A directory the command writes: checked before any work.

    def parse(self, text: str | None) -> str | int | bool:
        """The flag's value from its text (None: the flag was given without a value)."""
        if isinstance(self.default, bool):
            if text is None or text.lower() in ("true", "1"):
                return True
            if text.lower() in ("false", "0"):
                return False
            raise UserError(f"--{self.name}={text}: give true or false")
        if text is None or text == "":
            raise UserError(f"--{self.name} needs a value: --{self.name}=<value>")
        if isinstance(self.default, int):
            try:
                return int(text)
            except ValueError:
                raise UserError(f"--{self.name}={text}: give an integer") from None
        return text


@dataclasses.dataclass(frozen=True)
class Positional:
    """A command's positional arguments: exactly one of `choices`, or (`many`) one or more."""

    name: str
    help: str
    choices: tuple[str, ...] = ()
    many: bool = False


@dataclasses.dataclass(frozen=True)
class Invocation:
    """What a handler gets: every flag of its command (defaults filled), the positional arguments
    and the checked config."""

    flags: dict[str, Any]
    positional: tuple[str, ...]
    config: ml_collections.ConfigDict
    config_given: bool  # --config or an override was on the command line.


@dataclasses.dataclass(frozen=True)
class Command:
    """One `jaxmani <name>` command: its help text, flags, config groups, examples and handler."""

    name: str
    summary: str
    description: str
    handler: Callable[[Invocation], None]
    flags: tuple[Flag, ...] = ()
    config_groups: tuple[str, ...] = ()
    examples: tuple[str, ...] = ()
    positional: Positional | None = None
    default_config: str = "default"  # The packaged config read without --config.
    # Config fields the command sets itself, so an override of one is refused: (fields, why).
    fixed_fields: tuple[tuple[str, ...], str] = ((), "")


@dataclasses.dataclass(frozen=True)
class Parsed:
    """A command line split into the command's flags, config arguments and positionals."""

    flags: dict[str, Any]
    positional: tuple[str, ...]
    config: str | None  # The --config value.
    overrides: tuple[str, ...]  # `--config.a.b=v` arguments.
    verbosity: str | None
    help: bool


def one_line(error: BaseException) -> str:
    """Flattens an exception message (ml_collections puts hints on new lines) into one line."""
    text = str(error).replace("\\n", " ").replace("\\'", "'")
    return re.sub(r"\s+", " ", text).strip()


def check_writable_dir(path: str, what: str) -> None:
    """Raises a UserError unless `path` is, or can be created as, a writable directory."""
    existing = os.path.abspath(path)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        where = (
            "is a file" if existing == os.path.abspath(path) else f"is under the file {existing}"
        )
        raise UserError(f"{what}={path} {where}; give a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{what}={path}: {existing} is not writable; give another directory")


def check_data_dir(config: ml_collections.ConfigDict) -> None:
    """Raises a UserError when config.data.data_dir exists but is not a directory."""
    if os.path.exists(config.data.data_dir) and not os.path.isdir(config.data.data_dir):
        raise UserError(
            f"config.data.data_dir={config.data.data_dir} is a file; give the directory that "
            "`jaxmani prepare` builds into"
        )


def command_info(run: Invocation) -> None:
    """Prints `params/<network> <count>` per network and the total, or with --workdir the
    latest checkpoint's `step <n>` and `fingerprint <sha256>`."""
    from jaxmani.models import registry

    workdir = run.flags["workdir"]
    if workdir is not None:
        if run.config_given:
            raise UserError("info --workdir reads the run's own config; drop --config")
        from jaxmani.train import checkpoint

        step, digest = checkpoint.latest_fingerprint(workdir)
        print(f"step {step}")
        print(f"fingerprint {digest}")
        return
    total = 0
    for name in registry.GAN_NETWORKS:
        count = registry.count_params(registry.abstract_variables(name, run.config))
        total += count
        print(f"params/{name} {count}")
    print(f"params/total {total}")


def command_convert(run: Invocation) -> None:
    """Converts a PyTorch checkpoint into a jaxmani params file."""
    from jaxmani.convert import converter
    from jaxmani.models import registry

    values = run.flags
    variables = converter.convert_file(
        values["network"],
        values["src"],
        values["dst"],
        run.config,
        key=values["key"],
        overwrite=values["overwrite"],
    )
    print(f"{values['dst']}: {values['network']}, {registry.count_params(variables)} params")


def command_bench(run: Invocation) -> None:
    """Runs the benchmark named by the positional argument."""
    from jaxmani import bench

    config, mode = run.config, run.positional[0]
    if mode == "input":
        from jaxmani.data import pipeline

        check_data_dir(config)
        pipeline.load_builder(config)
    if mode == "train":
        bench.train_config(config)
    with stage("bench", f"{mode}: compiling, then timing"):
        if mode == "forward":
            lines = bench.format_rows(bench.bench_forward(config))
        elif mode == "input":
            lines = [bench.bench_input(config, config.data.data_dir, config.bench.input_batches)]
        elif mode == "train":
            lines = bench.format_train(bench.bench_train(config))
        elif mode == "edit":
            lines = bench.format_edit(bench.bench_edit(config))
        else:
            lines = bench.bench_profile(config)
    for line in lines:
        print(line)


def command_prepare(run: Invocation) -> None:
    """Builds the dataset config.data.name offline into config.data.data_dir."""
    from jaxmani.data import prepare

    data = run.config.data
    check_writable_dir(data.data_dir, "config.data.data_dir")
    try:
        path = prepare.prepare_dataset(
            data.name,
            data.data_dir,
            data.builder_config or None,
            run.flags["manual_dir"],
            fcn_onnx=run.flags["fcn_onnx"],
        )
    except (ValueError, FileNotFoundError) as e:
        raise UserError(one_line(e)) from e
    print(f"prepared {path}")


def command_demo(run: Invocation) -> None:
    """Runs the demo end to end and prints where its report went."""
    from jaxmani import demo
    from jaxmani.evaluate import sweep

    out = demo.run_demo(run.config, run.flags["workdir"])
    print(
        f"wrote {out}/report.md, {out}/metrics.json, {out}/edit_grid.png and "
        f"{out}/{sweep.SWEEP_FILE}"
    )


def command_pretrain(run: Invocation) -> None:
    """Trains the DAMSM encoders and prints the test loss and retrieval accuracy."""
    check_data_dir(run.config)
    from jaxmani.train import pretrain

    workdir = run.flags["workdir"]
    for name, value in pretrain.pretrain(run.config, workdir).items():
        print(f"{name} {value:.4f}")
    print(f"wrote {workdir}/text_encoder.msgpack and {workdir}/image_encoder.msgpack")


def command_train(run: Invocation) -> None:
    """Trains (or resumes) the GAN in --workdir."""
    check_data_dir(run.config)
    from jaxmani.train import loop

    workdir = run.flags["workdir"]
    state = loop.train(run.config, workdir, compilation_cache=True)
    print(f"{workdir}: step {int(state.step)}")


def command_evaluate(run: Invocation) -> None:
    """Evaluates a workdir's latest checkpoint, or converted params files, and prints where."""
    from jaxmani.evaluate import run as evaluate

    values = run.flags
    converted = {name: values[name] for name in CONVERTED_FLAGS}
    if values["workdir"] is not None:
        given = [f"--{name}" for name, value in converted.items() if value is not None]
        if given:
            raise UserError(f"evaluate --workdir reads the run's own networks; drop {given[0]}")
        out = evaluate.evaluate_workdir(
            run.config if run.config_given else None, values["workdir"], values["out"]
        )
    else:
        missing = [f"--{n}" for n in CONVERTED_FLAGS[:-1] if converted[n] is None]
        if missing or values["out"] is None:
            needed = ", ".join([*missing, *(["--out"] if values["out"] is None else [])])
            raise UserError(f"evaluate needs --workdir, or converted params files: add {needed}")
        out = evaluate.evaluate_params(
            run.config, values["out"], **{k: v or "" for k, v in converted.items()}
        )
    with open(os.path.join(out, "metrics.json")) as f:
        figures = json.load(f)["figures"]
    print(f"wrote {out}/metrics.json, {out}/report.md and figures: {', '.join(figures)}")


def command_report(run: Invocation) -> None:
    """Writes the paper-table report of evaluated workdirs and prints it."""
    from jaxmani.evaluate import report

    path = report.write_report(list(run.positional), run.flags["out"])
    with open(path) as f:
        print(f.read(), end="")
    print(f"wrote {path}")


def command_manipulate(run: Invocation) -> None:
    """Edits an image (or a folder of images) with sentences and prints what it wrote."""
    from jaxmani.edit import command

    values = run.flags
    if values["workdir"] is not None and run.config_given:
        raise UserError("manipulate --workdir reads the run's own config; drop --config")
    report = command.manipulate(
        config=run.config,
        **{name: values[name] for name in (*CONVERTED_FLAGS, *MANIPULATE_FLAGS)},
    )
    for line in report.warnings:
        print(f"jaxmani: warning: {line}", file=sys.stderr)
    for path in report.written:
        print(f"wrote {path}")


NETWORK_GROUPS = ("model", "data", "compat")  # What building the networks reads.
TRAIN_GROUPS = (*NETWORK_GROUPS, "seed", "pretrained", "loss", "optim", "train", "parallel")
# The fields demo.demo_config sets to paths inside the demo's workdir.
DEMO_FIXED_FIELDS = (
    "data.name",
    "data.data_dir",
    "pretrained.text_encoder",
    "pretrained.image_encoder",
)
WORKDIR_HELP = "the run's directory: checkpoints, logs, samples"
# Converted PyTorch files that stand in for a workdir (evaluate, manipulate).
CONVERTED_FLAGS = ("generator", "text_encoder", "image_encoder", "vocabulary", "vgg")
MANIPULATE_FLAGS = (
    "workdir",
    "out",
    "image",
    "text",
    "images",
    "captions",
    "side_by_side",
    "overwrite",
    "seed",
)
CONVERTED = (
    Flag("generator", "instead of --workdir: a converted generator params file"),
    Flag("text_encoder", "with --generator: the converted DAMSM text encoder"),
    Flag("image_encoder", "with --generator: the converted DAMSM image encoder"),
    Flag("vocabulary", "with --generator: vocabulary.json, or the baseline's captions.pickle"),
    Flag("vgg", "with --generator: the converted VGG16, else config.pretrained.vgg"),
)

COMMANDS = (
    Command(
        name="info",
        summary="parameter counts of every network, or a run's latest checkpoint",
        description=(
            "Prints `params/<network> <count>` for each network the config builds and "
            "`params/total`; with --workdir, `step <n>` and `fingerprint <sha256>` of the run's "
            "latest checkpoint (parameters and BatchNorm buffers of G, G-EMA and D)."
        ),
        handler=command_info,
        flags=(Flag("workdir", f"{WORKDIR_HELP}; show its latest checkpoint instead"),),
        config_groups=NETWORK_GROUPS,
        examples=("jaxmani info --config=bird", "jaxmani info --workdir=runs/toy_combined"),
    ),
    Command(
        name="convert",
        summary="PyTorch checkpoint -> jaxmani params file",
        description=(
            "Reads a PyTorch state dict (weights only, never code) and writes the flax variables "
            "of one network, checked against the network the config builds, atomically."
        ),
        handler=command_convert,
        flags=(
            Flag("network", "which network the checkpoint holds", required=True),
            Flag("src", "the PyTorch checkpoint to read", required=True),
            Flag("dst", "the params file to write (its folder must exist)", required=True),
            Flag("key", "dotted entry of a checkpoint that nests the state dict", default=""),
            Flag("overwrite", "replace an existing --dst", default=False),
        ),
        config_groups=NETWORK_GROUPS,
        examples=(
            "jaxmani convert --config=parity_seed --network=generator "
            "--src=netG_epoch_100.pth --dst=generator.msgpack",
        ),
    ),
    Command(
        name="prepare",
        summary="build a dataset offline into config.data.data_dir",
        description=(
            "Builds config.data.name (config.data.builder_config) as array_record files in "
            "config.data.data_dir without downloading anything; cub_birds reads the files of "
            "--manual_dir. A failed or interrupted build leaves nothing behind."
        ),
        handler=command_prepare,
        flags=(
            Flag("manual_dir", "cub_birds: the directory holding the downloaded CUB files"),
            Flag("fcn_onnx", "cub_birds: FCN-ResNet101 ONNX file; stores its background masks"),
        ),
        config_groups=("data",),
        examples=(
            "jaxmani prepare --config=toy_baseline",
            "jaxmani prepare --config=bird --manual_dir=birds",
        ),
    ),
    Command(
        name="pretrain",
        summary="train the DAMSM text and image encoders",
        description=(
            "Trains the DAMSM encoders on the configured dataset; writes text_encoder.msgpack, "
            "image_encoder.msgpack and vocabulary.json into --workdir for config.pretrained."
        ),
        handler=command_pretrain,
        flags=(Flag("workdir", "where the encoders and logs go", required=True, output_dir=True),),
        config_groups=(*NETWORK_GROUPS, "seed", "loss", "pretrain", "train"),
        examples=("jaxmani pretrain --config=toy_baseline --workdir=runs/toy_damsm",),
    ),
    Command(
        name="train",
        summary="train the GAN; resumes from the workdir's latest checkpoint",
        description=(
            "Trains G and D up to config.train.num_steps with checkpoints, metrics (JSON lines "
            "and TensorBoard) and sample grids in --workdir; a second run resumes exactly."
        ),
        handler=command_train,
        flags=(Flag("workdir", WORKDIR_HELP, required=True, output_dir=True),),
        config_groups=TRAIN_GROUPS,
        examples=("jaxmani train --config=toy_combined --workdir=runs/toy_combined",),
    ),
    Command(
        name="demo",
        summary="build toy_birds, pretrain DAMSM, train and evaluate: the demo, end to end",
        description=(
            "Runs prepare, pretrain, train and evaluate on one workdir: toy_birds in "
            "<workdir>/data, the DAMSM encoders in <workdir>/damsm, the run in <workdir>/train "
            "and its report, metrics, edit grid and caption sweep (test images edited with one "
            "sentence in six colours, and with colour pairs for body and wings) in "
            "<workdir>/train/eval/<step>. A rerun reuses what an interrupted one finished. The "
            "default config, toy_demo, takes about 15 minutes on 2 CPU cores with avx512f, about "
            "twice that on the older avx2-only CPU."
        ),
        handler=command_demo,
        flags=(
            Flag("workdir", "where the data, runs and report go", required=True, output_dir=True),
        ),
        config_groups=(*TRAIN_GROUPS, "pretrain", "evaluate"),
        fixed_fields=(
            DEMO_FIXED_FIELDS,
            "the demo keeps toy_birds and its encoders in --workdir; run prepare, pretrain and "
            "train for other data or encoder files",
        ),
        examples=(
            "jaxmani demo --workdir=demo",
            "jaxmani demo --workdir=demo --config.train.num_steps=2000",
        ),
        default_config="toy_demo",
    ),
    Command(
        name="evaluate",
        summary="metrics, report and figures of a run's edits of the test split",
        description=(
            "Edits every test image once with a mismatched caption (seeded) using G-EMA, computes "
            "every metric its inputs allow (mask score, sharpness, R-precision, MP; on toy_birds "
            "edit PSNR/SSIM, part-colour accuracy and background change; FID and IS when "
            "config.pretrained.fid_inception / inception are set) and writes metrics.json, "
            "report.md and PNG figures (on toy_birds with the caption sweep: test images edited "
            "with one sentence in six colours, and with colour pairs for body and wings) into "
            "--out (default <workdir>/eval/<step>). Without --config it uses the workdir's own "
            "config."
        ),
        handler=command_evaluate,
        flags=(
            Flag("workdir", "the trained run to evaluate"),
            Flag("out", "where metrics.json, report.md and figures go", output_dir=True),
            *CONVERTED,
        ),
        config_groups=(*TRAIN_GROUPS, "evaluate"),
        examples=(
            "jaxmani evaluate --workdir=runs/toy_combined",
            "jaxmani evaluate --config=parity_seed --generator=generator.msgpack "
            "--text_encoder=text_encoder.msgpack --image_encoder=image_encoder.msgpack "
            "--vocabulary=captions.pickle --config.data.data_dir=data --out=eval_baseline",
        ),
    ),
    Command(
        name="report",
        summary="the paper's Tables I-III from evaluated workdirs",
        description=(
            "Reads <workdir>/eval/<latest step>/metrics.json of each workdir, matches each to its "
            "method by its config, and writes Markdown tables in the layout of the paper's "
            "Tables I, II and III with the paper's numbers beside ours, plus one PNG chart per "
            "table next to --out; prints the tables."
        ),
        handler=command_report,
        flags=(Flag("out", "the Markdown file to write", default="report.md"),),
        positional=Positional("workdirs", "evaluated workdirs", many=True),
        examples=("jaxmani report runs/toy_baseline runs/toy_combined --out=runs/report.md",),
    ),
    Command(
        name="manipulate",
        summary="edit your own images with a sentence",
        description=(
            "Edits --image with --text into --out, or every image of --images with the lines "
            "`name<TAB>caption` of --captions into the folder --out, using a trained workdir or "
            "converted PyTorch files. Unknown words are named and skipped; outputs are written "
            "atomically and never replaced without --overwrite."
        ),
        handler=command_manipulate,
        flags=(
            Flag("workdir", "the trained run whose G-EMA edits"),
            Flag("image", "the image to edit"),
            Flag("text", "the sentence describing the wanted image"),
            Flag("images", "instead of --image: a folder of images"),
            Flag("captions", "with --images: a UTF-8 file of `name<TAB>caption` lines"),
            Flag("out", "the output image (or folder, with --images)", required=True),
            Flag("side_by_side", "write original | edited | mask side by side", default=False),
            Flag("overwrite", "replace existing outputs", default=False),
            Flag("seed", "seeds G's noise: the same seed gives the same edit", default=0),
            *CONVERTED,
        ),
        config_groups=TRAIN_GROUPS,
        examples=(
            "jaxmani manipulate --workdir=runs/toy_combined --image=bird.png "
            '--text="this bird has a red crown and blue wings" --out=edited.png',
            "jaxmani manipulate --workdir=runs/toy_combined --images=birds --captions=edits.tsv "
            "--out=edited --side_by_side",
        ),
    ),
    Command(
        name="bench",
        summary="time the networks, the input pipeline, a training step or an edit; profile a step",
        description=(
            "forward: forward+backward time and peak memory of G and D, JAX vs PyTorch; input: "
            "images/s of the train pipeline on the prepared dataset; train: one full training "
            "step (D+G, frozen encoders, Adam, EMA), JAX vs the PyTorch restatement; edit: the "
            "latency of one edit (encoders, VGG, G) at batch 1 and 10, JAX vs PyTorch; profile: "
            "the config's training step (its methods included) under the JAX profiler, its time "
            "per network and direction, per XLA op kind and its bench.profile_rows slowest ops."
        ),
        handler=command_bench,
        positional=Positional(
            "mode",
            "forward, input, train, edit or profile (see above)",
            choices=("forward", "input", "train", "edit", "profile"),
        ),
        config_groups=(*TRAIN_GROUPS, "bench"),
        examples=(
            "jaxmani bench forward --config=bird",
            "jaxmani bench profile --config=toy_demo --config.bench.iters=3",
            "jaxmani bench input --config.data.builder_config=256 --config.data.image_size=256",
        ),
    ),
)
COMMAND_TABLE = {command.name: command for command in COMMANDS}


def config_field_paths() -> dict[str, list[str]]:
    """Leaf name -> dotted paths in the packaged default config (for unknown-flag hints)."""
    from configs import default

    paths: dict[str, list[str]] = {}

    def visit(node: ml_collections.ConfigDict, prefix: str) -> None:
        for key, value in node.items():
            if isinstance(value, ml_collections.ConfigDict):
                visit(value, f"{prefix}{key}.")
            else:
                paths.setdefault(key, []).append(f"{prefix}{key}")

    visit(default.get_config(), "")
    return paths


def unknown_flag(command: Command, name: str) -> UserError:
    """The error for a flag `command` does not take, listing the ones it does."""
    taken = [f"--{flag.name}" for flag in command.flags]
    taken += ["--config", "--config.<field>", "--verbosity", "--help"]
    hint = ""
    fields = config_field_paths().get(name.removeprefix("no"), [])
    if fields:
        hint = f" (a config field: use {' or '.join(f'--config.{path}' for path in fields)})"
    return UserError(f"{command.name} does not take --{name}{hint}; it takes {', '.join(taken)}")


def split_args(command: Command, args: Sequence[str]) -> Parsed:
    """Sorts a command's arguments into its flags, config arguments and positionals."""
    own = {flag.name: flag for flag in command.flags}
    values: dict[str, Any] = {flag.name: flag.default for flag in command.flags}
    positional, overrides = [], []
    config = verbosity = None
    wants_help = False
    index = 0
    while index < len(args):
        token = args[index]
        index += 1
        if token in ("-h", "--help"):
            wants_help = True
            continue
        if not token.startswith("-") or token == "-":
            positional.append(token)
            continue
        if not token.startswith("--"):
            raise unknown_flag(command, token.lstrip("-"))
        name, equals, text = token[2:].partition("=")
        takes_value = name in ("config", "verbosity") or name.startswith("config.")
        takes_value = takes_value or (name in own and not isinstance(own[name].default, bool))
        if takes_value and not equals and index < len(args) and not args[index].startswith("-"):
            text, equals = args[index], "="
            index += 1
        value = text if equals else None
        if takes_value and value is None and name not in own:
            raise UserError(f"--{name} needs a value: --{name}=<value>")
        if name == "config":
            config = value
        elif name.startswith("config."):
            overrides.append(f"--{name}={text}")
        elif name == "verbosity":
            verbosity = value
        elif name in own:
            values[name] = own[name].parse(value)
        elif name[2:] in own and name.startswith("no") and isinstance(own[name[2:]].default, bool):
            values[name[2:]] = False
        else:
            raise unknown_flag(command, name)
    return Parsed(values, tuple(positional), config, tuple(overrides), verbosity, wants_help)


def check_positional(command: Command, positional: tuple[str, ...]) -> None:
    """Raises a UserError unless the positional arguments are what `command` declares."""
    spec = command.positional
    if spec is None:
        if positional:
            raise UserError(
                f"{command.name} takes no positional arguments; got {' '.join(positional)}"
            )
        return
    choices = " | ".join(spec.choices)
    if not positional or (len(positional) > 1 and not spec.many):
        wanted = ("one or more " if spec.many else "one ") + spec.name
        wanted += f" ({choices})" if choices else ""
        got = f"; got {' '.join(positional)}" if positional else ""
        raise UserError(f"{command.name} takes {wanted}{got}")
    wrong = [value for value in positional if spec.choices and value not in spec.choices]
    if wrong:
        raise UserError(f"{command.name}: unknown {spec.name} {wrong[0]!r}; choose {choices}")


def check_required(command: Command, values: dict[str, Any]) -> None:
    """Raises a UserError naming the first required flag that is missing or the first output
    directory that cannot be written."""
    for flag in command.flags:
        if flag.required and values[flag.name] is None:
            raise UserError(f"{command.name} needs --{flag.name} ({flag.help})")
        if flag.output_dir and values[flag.name] is not None:
            check_writable_dir(values[flag.name], f"--{flag.name}")


def resolve_config_path(value: str | None, default: str = "default") -> str:
    """The file of --config: a path as given, else a packaged config by name (`bird`); without
    --config, the packaged config `default`."""
    if value is None:
        return os.fspath(configs.DIRECTORY / f"{default}.py")
    if os.path.isfile(value):
        return value
    packaged = configs.packaged_path(value)
    if packaged is None:
        raise UserError(
            f"--config={value}: no such file and no packaged config of that name; give a path or "
            f"one of {', '.join(configs.names())}"
        )
    return os.fspath(packaged)


def check_override_groups(command: Command, overrides: tuple[str, ...]) -> None:
    """Raises a UserError for an override of a config group `command` does not read, or of a
    field it sets itself."""
    fixed, why = command.fixed_fields
    for override in overrides:
        name = override.removeprefix("--config.").split("=")[0]
        group = name.split(".")[0]
        if group not in command.config_groups:
            raise UserError(
                f"{command.name} does not read config.{group} (--config.{name}); it "
                f"reads config.{', config.'.join(command.config_groups)}"
            )
        if name in fixed:
            raise UserError(f"{command.name} sets config.{name} itself: {why}")


def unknown_field_message(overrides: Sequence[str], error: BaseException) -> str:
    """Names the --config.* argument with an unknown field and ml_collections' suggestion."""
    text = one_line(error)
    names = re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text)
    wrong = names[0] if names else ""
    args = [a.split("=")[0] for a in overrides]
    arg = next((a for a in args if wrong in a.split(".")), "--config")
    suggestion = re.search(r'Did you mean "([^"]+)"', text)
    hint = f' (did you mean "{suggestion.group(1)}"?)' if suggestion else ""
    return f"unknown config field {wrong!r} in {arg}{hint}"


def load_config(path: str, overrides: tuple[str, ...]) -> ml_collections.ConfigDict:
    """Loads the config file `path` with its `--config.a.b=v` overrides, then checks it."""
    from jaxmani import config_check

    holder = flags.FlagValues()
    argv = ["jaxmani", *overrides]
    try:
        config_flag = config_flags.DEFINE_config_file(
            "config", path, flag_values=holder, sys_argv=argv
        )
        holder(argv)
        config = config_flag.value
    except (KeyError, AttributeError) as e:
        raise UserError(unknown_field_message(overrides, e)) from e
    except (flags.Error, OSError, ValueError, TypeError) as e:
        raise UserError(f"bad flags: {one_line(e)}") from e
    config.lock()
    config_check.check_config(config)
    return config


def set_verbosity(verbosity: str | None) -> None:
    """Library logs (absl, JAX, TFDS, orbax) at ERROR, or at the level --verbosity gives."""
    if verbosity is None:
        logging.set_verbosity(logging.ERROR)
        return
    if verbosity.lower() not in VERBOSITY_NAMES and not re.fullmatch(r"-?\d+", verbosity):
        raise UserError(
            f"--verbosity={verbosity}: give an integer (0 = info, 1 = debug) or one of "
            f"{', '.join(VERBOSITY_NAMES)}"
        )
    logging.set_verbosity(verbosity)


def flag_lines(command: Command) -> list[str]:
    """The help lines of a command's flags, the config flags included."""
    rows = []
    for flag in command.flags:
        if isinstance(flag.default, bool):
            rows.append((f"--{flag.name}", f"{flag.help} (default: off)"))
            continue
        default = "required" if flag.required else f"default: {flag.default!r}"
        rows.append((f"--{flag.name}=<value>", f"{flag.help} ({default})"))
    rows += [
        (
            "--config=<file|name>",
            f"config file, or a packaged config (default: {command.default_config})",
        ),
        ("--config.<group>.<field>=<value>", "override one config field"),
        ("--verbosity=<level>", "show library logs: info, debug or an absl level (default: off)"),
        ("-h, --help", "show this help"),
    ]
    width = max(len(name) for name, _ in rows)
    return [f"  {name:<{width}}  {text}" for name, text in rows]


def command_help(command: Command) -> str:
    """`jaxmani <command> --help`: what it does, its flags, config groups and examples."""
    spec = command.positional
    arguments = ""
    if spec is not None:
        arguments = " {" + ",".join(spec.choices) + "}" if spec.choices else f" <{spec.name}>..."
    lines = [
        f"usage: jaxmani {command.name}{arguments} [flags]",
        "",
        textwrap.fill(f"{command.summary[0].upper()}{command.summary[1:]}. {command.description}"),
    ]
    if spec is not None:
        lines += ["", "Arguments:", f"  {spec.name}  {spec.help}"]
    lines += ["", "Flags:", *flag_lines(command)]
    groups = ", ".join(f"config.{group}" for group in command.config_groups)
    lines += [
        "",
        f"Config groups read: {groups}",
        f"Packaged configs: {', '.join(configs.names())}",
    ]
    lines += ["", "Examples:", *(f"  {example}" for example in command.examples)]
    return "\n".join(lines)


def main_help() -> str:
    """`jaxmani --help`: every command with its one-line summary."""
    width = max(len(command.name) for command in COMMANDS)
    lines = ["usage: jaxmani <command> [flags]", "", "Commands:"]
    lines += [f"  {command.name:<{width}}  {command.summary}" for command in COMMANDS]
    lines += ["", "`jaxmani <command> --help` shows a command's flags, config groups and examples."]
    return "\n".join(lines)


def main(argv: Sequence[str]) -> None:
    """Parses the arguments after `jaxmani` and runs the command they name."""
    if argv and argv[0] in ("-h", "--help"):
        print(main_help())
        return
    if not argv or argv[0] not in COMMAND_TABLE:
        given = f"unknown command {argv[0]!r}" if argv else "no command given"
        raise UserError(f"{given}; commands: {', '.join(COMMAND_TABLE)} (see jaxmani --help)")
    command = COMMAND_TABLE[argv[0]]
    parsed = split_args(command, argv[1:])
    if parsed.help:
        print(command_help(command))
        return
    set_verbosity(parsed.verbosity)
    check_positional(command, parsed.positional)
    check_required(command, parsed.flags)
    check_override_groups(command, parsed.overrides)
    config = load_config(
        resolve_config_path(parsed.config, command.default_config), parsed.overrides
    )
    given = parsed.config is not None or bool(parsed.overrides)
    command.handler(Invocation(parsed.flags, parsed.positional, config, given))


def fail(message: str, status: int = USAGE_STATUS) -> None:
    """Prints `jaxmani: <message>` on stderr and exits with `status`."""
    print(f"jaxmani: {message}", file=sys.stderr, flush=True)
    sys.exit(status)


def huge_page_environment(environ: dict[str, str]) -> dict[str, str] | None:
    """`environ` plus glibc's transparent-huge-page tunable for malloc, or None when glibc is
    absent or GLIBC_TUNABLES already says something about it.

    XLA:CPU allocates each step's buffers afresh (GBs at the bird size), and with 4 KB pages the
    kernel spent a fifth of the bird step's CPU time in 2.9 million page faults; with
    `glibc.malloc.hugetlb=1` malloc asks for huge pages and the step took 20% less time (README,
    Performance). Tunables are read when a process starts, so the command re-executes itself.
    """
    if not os.confstr_names.get("CS_GNU_LIBC_VERSION") or not os.confstr("CS_GNU_LIBC_VERSION"):
        return None
    tunables = environ.get("GLIBC_TUNABLES", "")
    if "glibc.malloc.hugetlb" in tunables:
        return None
    merged = f"{tunables}:{HUGE_PAGE_TUNABLE}" if tunables else HUGE_PAGE_TUNABLE
    return {**environ, "GLIBC_TUNABLES": merged}


def run(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point: a UserError is one line and status 2, Ctrl-C status 130.

    As a console script (no `argv`) on glibc, it first re-executes itself with
    huge_page_environment. A Ctrl-C that Python swallowed is raised again (`interrupts`).
    """
    environment = huge_page_environment(dict(os.environ)) if argv is None else None
    if environment is not None:
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], environment)
    sys.unraisablehook = interrupts.remember
    flags.FLAGS.mark_as_parsed()  # Libraries may read absl flags; jaxmani parses its own.
    logging.use_absl_handler()  # Python logging (JAX's included) follows --verbosity.
    try:
        main(sys.argv[1:] if argv is None else argv)
        interrupts.check()
    except UserError as e:
        fail(f"error: {e}")
    except KeyboardInterrupt:
        fail("interrupted", INTERRUPTED_STATUS)


if __name__ == "__main__":
    run()
