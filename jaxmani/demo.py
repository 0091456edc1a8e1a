"""The demo: toy_birds built offline, DAMSM pretrained, the GAN trained, then evaluated.

`run_demo(config, workdir)` runs the four commands a user would (prepare, pretrain, train,
evaluate) on one workdir: the dataset in <workdir>/data, the DAMSM encoders in <workdir>/damsm,
the run in <workdir>/train (its compilation cache in <workdir>/train/xla_cache, as `jaxmani train`
keeps one) and its evaluation in <workdir>/train/eval/<step>. Each stage reuses
what an earlier, interrupted demo finished: a complete dataset, the encoder files, the latest
checkpoint. The evaluation includes the caption sweep (`jaxmani.evaluate.sweep`), which shows
whether the colours follow the words; the demo ends with a line of its main metrics.
"""

import json
import os

import ml_collections

from jaxmani.data import prepare
from jaxmani.evaluate import run, sweep
from jaxmani.progress import status
from jaxmani.train import loop, pretrain

LABEL = "demo"
ENCODER_FILES = ("text_encoder.msgpack", "image_encoder.msgpack")
SUMMARY = ("edit_psnr", "background_change", "part_colour_accuracy", "edited_part_accuracy")


def demo_config(config: ml_collections.ConfigDict, workdir: str) -> ml_collections.ConfigDict:
    """A copy of `config` on toy_birds in <workdir>/data with <workdir>/damsm's encoders."""
    config = config.copy_and_resolve_references()
    damsm = os.path.join(workdir, "damsm")
    with config.unlocked():
        config.data.name = "toy_birds"
        config.data.data_dir = os.path.join(workdir, "data")
        config.pretrained.text_encoder = os.path.join(damsm, ENCODER_FILES[0])
        config.pretrained.image_encoder = os.path.join(damsm, ENCODER_FILES[1])
    return config


def run_demo(
    config: ml_collections.ConfigDict,
    workdir: str,
    num_examples: dict[str, int] | None = None,
) -> str:
    """Prepares, pretrains, trains and evaluates in `workdir`; returns the evaluation directory.

    `num_examples` (split -> count) builds a smaller toy_birds than the full 4,000 + 500 images.
    """
    config = demo_config(config, workdir)
    status(LABEL, "1/4 building toy_birds")
    prepare.prepare_dataset(
        "toy_birds", config.data.data_dir, config.data.builder_config or None, None, num_examples
    )
    damsm = os.path.dirname(config.pretrained.text_encoder)
    if all(os.path.isfile(os.path.join(damsm, name)) for name in ENCODER_FILES):
        status(LABEL, f"2/4 DAMSM encoders already in {damsm}")
    else:
        status(LABEL, f"2/4 pretraining the DAMSM encoders into {damsm}")
        results = pretrain.pretrain(config, damsm)
        status(LABEL, " ".join(f"{name} {value:.4f}" for name, value in results.items()))
    train_dir = os.path.join(workdir, "train")
    status(LABEL, f"3/4 training {config.train.num_steps} steps in {train_dir}")
    loop.train(config, train_dir, compilation_cache=True)
    status(LABEL, "4/4 evaluating the trained generator on the test split, with the caption sweep")
    out = run.evaluate_workdir(config, train_dir)
    with open(os.path.join(out, "metrics.json")) as f:
        values = json.load(f)["metrics"]
    shown = [name for name in result_names() if name in values]  # Skipped ones: report.md.
    status(LABEL, " ".join(f"{name} {values[name]:.4f}" for name in shown))
    return out


def result_names() -> list[str]:
    """The metrics the demo prints when it ends: the README's demo table, then the sweep's."""
    colours = [sweep.accuracy_name(colour) for colour in sweep.SWEEP_COLOURS]
    return [*SUMMARY, sweep.ACCURACY, *colours, sweep.UNNAMED, sweep.BINDING]
