"""Every user mistake of every command: exit status 2, one line on stderr, nothing left behind.

Each row of MISTAKES runs `python -m jaxmani.cli` in a fresh directory holding FILES; the rows run
in parallel (most fail before JAX is imported). `{toy}` in a row is a prepared toy_birds directory.
Later commands add their rows here.
"""

import concurrent.futures
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
ENVIRONMENT = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT)}
FILES = ("afile", "adir/", "empty/", "src.pth", "existing.msgpack")
CONVERT = ("convert", "--network=vgg", "--src=src.pth")
BIRD = ("prepare", "--config=bird", "--config.data.data_dir=data")
TRAIN = ("train", "--config=tiny", "--workdir=run")
TOY = ("--config=tiny", "--config.data.data_dir={toy}", "--config.model.text.vocab_size=0")

# (arguments, part of the one-line message, paths that must not exist afterwards). Each value rule
# of the config has its row in tests/test_cli.py (in process); here one row per kind of check.
MISTAKES = [
    # The command line itself.
    ((), "no command given; commands: info, convert", ()),
    (("frobnicate",), "unknown command 'frobnicate'; commands: info, convert", ()),
    (("info", "--network=generator"), "info does not take --network; it takes --workdir", ()),
    (("info", "-x"), "info does not take --x", ()),
    (
        ("bench", "input", "--builder_config=256"),
        "bench does not take --builder_config (a config field: use --config.data.builder_config)",
        (),
    ),
    (("info", "extra"), "info takes no positional arguments; got extra", ()),
    (("bench",), "bench takes one mode (forward | input | train | edit | profile)", ()),
    (("bench", "forward", "input"), "one mode (forward | input | train | edit | profile); got", ()),
    (
        ("bench", "fwd"),
        "bench: unknown mode 'fwd'; choose forward | input | train | edit | profile",
        (),
    ),
    (("info", "--verbosity=loud"), "--verbosity=loud: give an integer", ()),
    ((*CONVERT, "--dst=out.msgpack", "--overwrite=maybe"), "--overwrite=maybe: give true", ()),
    ((*CONVERT,), "convert needs --dst", ()),
    (("train", "--config=tiny"), "train needs --workdir", ()),
    (("pretrain", "--config=tiny"), "pretrain needs --workdir", ()),
    (("demo",), "demo needs --workdir", ()),
    # Configs: files, names, overrides, values.
    (("info", "--config"), "--config needs a value: --config=<value>", ()),
    (("info", "--config=configs/missing.py"), "--config=configs/missing.py: no such file", ()),
    (("info", "--config=birds"), "no packaged config of that name; give a path or one of", ()),
    (
        ("info", "--config=tiny", "--config.model.g.gf_dimm=3"),
        "unknown config field 'gf_dimm' in --config.model.g.gf_dimm (did you mean \"gf_dim\"?)",
        (),
    ),
    (("info", "--config.model.g.gf_dim=x"), "bad flags", ()),
    (("info", "--config.train.batch_size=3"), "info does not read config.train", ()),
    (("info", "--config.model.g.gf_dim=-1"), "config.model.g.gf_dim=-1: must be an integer", ()),
    (("info", "--config.model.g.gf_dim=0"), "config.model.g.gf_dim=0: must be an integer", ()),
    ((*TRAIN, "--config.train.batch_size=0"), "config.train.batch_size=0: must be", ("run",)),
    ((*TRAIN, "--config.optim.d.b2=1"), "config.optim.d.b2=1.0: must be in [0, 1)", ("run",)),
    (("info", "--config.data.image_size=100"), "config.data.image_size=100: the networks", ()),
    ((*TRAIN, "--config.loss.g.mask_source=fcm"), "mask_source='fcm': choose one of", ("run",)),
    ((*TRAIN, "--config.train.dtype=float16"), "dtype='float16': choose one of", ("run",)),
    ((*TRAIN, "--config.model.image.pool=median"), "pool='median': choose one of", ("run",)),
    (
        (*TRAIN, "--config.loss.g.edited_region_weight=25"),
        "edited_region_weight=25.0: needs config.loss.g.paired_edit_weight > 0",
        ("run",),
    ),
    ((*TRAIN, "--config.data.builder_config=128"), "unknown config '128' for dataset", ("run",)),
    # Directories that are files or cannot be created.
    (("train", "--config=tiny", "--workdir=afile"), "--workdir=afile is a file", ()),
    (("pretrain", "--workdir=afile/run"), "--workdir=afile/run is under the file", ()),
    (("demo", "--workdir=afile"), "--workdir=afile is a file; give a directory", ()),
    (
        ("demo", "--workdir=d", "--config.data.data_dir=elsewhere"),
        "demo sets config.data.data_dir itself: the demo keeps toy_birds and its encoders in",
        (),
    ),
    (("prepare", "--config.data.data_dir=afile"), "config.data.data_dir=afile is a file", ()),
    (("prepare", "--config.data.data_dir=afile/d"), "config.data.data_dir=afile/d is under", ()),
    ((*TRAIN, "--config.data.data_dir=afile"), "config.data.data_dir=afile is a file", ("run",)),
    ((*TRAIN, "--config.data.data_dir=no_data"), "build it with `jaxmani prepare", ("run",)),
    (("bench", "input", "--config.data.data_dir=no_data"), "is not prepared in", ("no_data",)),
    (("bench", "train", "--config=bird_combined"), "bench train times the baseline step", ()),
    (
        ("bench", "profile", "--config.bench.profile_rows=0"),
        "config.bench.profile_rows=0: must be an integer >= 1",
        (),
    ),
    # info --workdir.
    (("info", "--workdir=no_run"), "no_run: no checkpoints", ()),
    (("info", "--workdir=adir", "--config=tiny"), "info --workdir reads the run's own config", ()),
    # convert: the destination, the source, the network.
    ((*CONVERT, "--dst=adir"), "--dst=adir is a directory", ("adir.partial",)),
    ((*CONVERT, "--dst=nowhere/vgg.msgpack"), "does not exist; create it first", ("nowhere",)),
    ((*CONVERT, "--dst=existing.msgpack"), "pass --overwrite", ("existing.msgpack.partial",)),
    ((*CONVERT, "--dst=src.pth"), "the destination must differ from the source", ()),
    (
        ("convert", "--network=vgg", "--src=nothing.pth", "--dst=out.msgpack"),
        "nothing.pth: no such file",
        ("out.msgpack", "out.msgpack.partial"),
    ),
    (("convert", "--network=gen", "--src=src.pth", "--dst=out.msgpack"), "unknown network", ()),
    # prepare: the manual directory, the build.
    (BIRD, "dataset 'cub_birds' is built from files you download: pass --manual_dir", ("data",)),
    (
        (*BIRD, "--manual_dir=empty"),
        "the manual directory empty lacks train/filenames.pickle, test/filenames.pickle",
        ("data",),
    ),
    ((*BIRD, "--manual_dir=gone"), "CUB_200_2011/images.txt", ("data", "gone")),
    (("prepare", "--fcn_onnx=fcn.onnx"), "does not support FCN masks", ("data",)),
    # evaluate, report, manipulate.
    (("evaluate",), "evaluate needs --workdir, or converted params files: add --generator", ()),
    (("evaluate", "--workdir=no_run"), "no_run: no such workdir", ("no_run",)),
    (("evaluate", "--workdir=adir", "--generator=g"), "drop --generator", ()),
    (("report",), "report takes one or more workdirs", ()),
    (("report", "adir"), "adir: not evaluated; run `jaxmani evaluate --workdir=adir`", ()),
    (("manipulate", "--out=o.png"), "manipulate needs either --image and --text", ()),
    (
        ("manipulate", "--workdir=adir", "--image=gone.png", "--text=red", "--out=o.png"),
        "gone.png: no such file",
        ("o.png",),
    ),
    (
        ("manipulate", "--workdir=adir", "--image=afile", "--text=red", "--out=o.png"),
        "afile: not an image file",
        ("o.png",),
    ),
    (
        ("manipulate", "--workdir=adir", "--image=afile", "--text=red", "--out=gone/o.png"),
        "does not exist; create it first",
        ("gone",),
    ),
    (
        ("manipulate", "--workdir=adir", "--config=tiny", "--image=afile", "--out=o.png"),
        "manipulate --workdir reads the run's own config; drop --config",
        ("o.png",),
    ),
    # On a prepared toy_birds.
    (
        ("train", "--config=toy_combined", "--config.data.data_dir={toy}", "--workdir=run"),
        "text_encoder.msgpack: no such params file; make it with `jaxmani convert",
        ("run",),
    ),
    (
        ("train", *TOY, "--config.model.text.vocab_size=7", "--workdir=run"),
        "config.model.text.vocab_size=7 but the dataset's vocabulary has",
        ("run",),
    ),
]


def make_files(directory: pathlib.Path) -> None:
    """The files and directories of FILES (a name ending in / is a directory)."""
    for name in FILES:
        if name.endswith("/"):
            (directory / name).mkdir()
        else:
            (directory / name).write_bytes(b"")


def run_cli(args: list[str], cwd: pathlib.Path) -> subprocess.CompletedProcess:
    """`python -m jaxmani.cli args` in `cwd`."""
    command = [sys.executable, "-m", "jaxmani.cli", *args]
    return subprocess.run(
        command, cwd=cwd, env=ENVIRONMENT, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def results(tmp_path_factory, toy_data_dir):
    """Every row's (directory, completed process), one row per CPU at a time."""
    directories = []
    for index in range(len(MISTAKES)):
        directory = tmp_path_factory.mktemp(f"row{index}")
        make_files(directory)
        directories.append(directory)
    rows = [[arg.format(toy=toy_data_dir) for arg in args] for args, _, _ in MISTAKES]
    with concurrent.futures.ThreadPoolExecutor(os.cpu_count()) as pool:
        done = list(pool.map(run_cli, rows, directories))
    return list(zip(directories, done, strict=True))


def assert_one_error_line(result: subprocess.CompletedProcess, message: str) -> None:
    """Status 2, nothing on stdout, one `jaxmani: error:` line holding `message` on stderr."""
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("jaxmani: error: ")
    assert message in lines[0], lines[0]


@pytest.mark.parametrize(
    ("index", "args"), [(i, " ".join(row[0])) for i, row in enumerate(MISTAKES)]
)
def test_mistake_is_one_line_and_leaves_nothing(results, index, args):
    directory, result = results[index]
    _, message, leftovers = MISTAKES[index]
    assert_one_error_line(result, message)
    for name in leftovers:
        assert not (directory / name).exists(), name
    assert sorted(p.name for p in directory.iterdir()) == sorted(name.rstrip("/") for name in FILES)


# Runs `python ARGS` with SIGINT at its default, as under a terminal. A process that starts with
# SIGINT ignored keeps ignoring it (Python installs no handler then), and the test runner's worker
# processes were found with SIGINT ignored in full suite runs. (A Popen preexec_fn would do the
# same, but forks a multithreaded process.)
PREPARE_TOY = ("prepare", "--config.data.data_dir=data")
WITH_DEFAULT_CTRL_C = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
)


def test_ctrl_c_during_prepare_is_one_line_and_leaves_no_dataset(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-c", WITH_DEFAULT_CTRL_C, "-m", "jaxmani.cli", *PREPARE_TOY],
        cwd=tmp_path,
        env=ENVIRONMENT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    first = process.stderr.readline()
    assert first.startswith("prepare: building toy_birds in data"), first
    time.sleep(1.0)  # Inside the build: TFDS is writing examples.
    assert list((tmp_path / "data").rglob("*incomplete*"))
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert err == "jaxmani: interrupted\n"
    assert out == ""
    assert not (tmp_path / "data").exists()
