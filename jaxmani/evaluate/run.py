"""`jaxmani evaluate`: edits the test split with G-EMA and writes metrics, a report and figures.

A jaxmani workdir (`evaluate_workdir`) and converted PyTorch params files (`evaluate_params`)
become the same `Model` and share one code path, `evaluate_model`:

1. One pass over the test split in order (`create_dataset(config, "test", train=False)` with
   global batch config.evaluate.batch_size), every example once over all hosts; padding rows
   (`valid` False) are generated but never counted.
2. Per batch, G-EMA in eval mode edits each image with its mismatched caption (`wrong_caption`,
   drawn by the pipeline from config.seed: the same pairing every run) and, on toy_birds, with its
   ground-truth edit caption (`edit_caption`). G's noise z is seeded by config.evaluate.seed and
   the batch index, so two evaluations give identical numbers.
3. The edits become uint8 PNG pixels with `pipeline.to_uint8` (rounded and clipped; the baseline
   truncates) and every metric is computed on those pixels (METRICS_SPEC §3-§6, `metrics`).
4. `<out>/metrics.json`, `<out>/report.md` and PNG figures are written (process 0); on toy_birds
   the caption sweep (`sweep`) adds its colour-following metrics and its figure.
"""

import dataclasses
import functools
import json
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.experimental import multihost_utils

from jaxmani import generate, params_io
from jaxmani.data import pipeline, toy_birds
from jaxmani.data.text import Vocabulary, load_vocabulary_file
from jaxmani.edit.manipulator import Manipulator
from jaxmani.errors import UserError
from jaxmani.evaluate import fid, figures, inception_score, metrics, sweep
from jaxmani.losses import mask as mask_loss
from jaxmani.progress import Progress
from jaxmani.train import checkpoint, loop

EVAL_DIR = "eval"


def edited_part_name(part: str) -> str:
    """The metric name of edited-part accuracy restricted to one toy_birds part."""
    return f"edited_part_accuracy_{part}"


# Name -> (what it measures, which direction is better), in report order.
METRICS: dict[str, tuple[str, str]] = {
    "mask_score_hm": ("mask score (Table I), HM mask of the pair, 0-255 MSE", "lower"),
    "mask_score_gt": ("mask score (Table I), toy ground-truth mask, 0-255 MSE", "lower"),
    "mask_score_fcn": ("mask score (Table I), stored FCN mask, 0-255 MSE", "lower"),
    "sharpness": ("sharpness score (Table II) of the edits, 0-255", "higher"),
    "sharpness_real": ("sharpness score of the original test images", "reference"),
    "r_precision": ("R-precision, top-1 among the edit caption and 99 others", "higher"),
    "r_precision_std": ("std of R-precision over the repeats", "-"),
    "mp": ("manipulative precision (1 - L1 diff) x DAMSM cosine", "higher"),
    "edit_psnr": ("toy: PSNR (dB) of the edit against the ground-truth edit", "higher"),
    "edit_ssim": ("toy: SSIM of the edit against the ground-truth edit", "higher"),
    "background_change": (
        "toy: mean absolute change (0-255) under the true background mask",
        "lower",
    ),
    "part_colour_accuracy": ("toy: parts whose mean colour is the caption's colour", "higher"),
    "edited_part_accuracy": ("toy: the same over the parts the edit recolours", "higher"),
    **{
        edited_part_name(part): (f"toy: the same for the {part} alone, where recoloured", "higher")
        for part in toy_birds.PART_NAMES
    },
    "part_attention_lift": (
        "toy: how many times more G's word attention (its S/4 grid) gives a part's noun and colour "
        "word in that part's regions than elsewhere (1: it ignores where the part is)",
        "higher",
    ),
    sweep.ACCURACY: (
        "toy: of the six edits with 'this bird has a <colour> body and <colour> wings', the "
        "one asked for a colour has body and wings nearest to it (chance 1/6)",
        "higher",
    ),
    **{
        sweep.accuracy_name(colour): (f"toy: the same for {colour} alone", "higher")
        for colour in sweep.SWEEP_COLOURS
    },
    sweep.UNNAMED: (
        "toy: the same over the parts the sentence does not name (head, crown, tail, beak, eyes):"
        " 1/6 when the edits keep them, 1 when they paint the whole bird",
        "lower",
    ),
    sweep.BINDING: (
        "toy: with 'this bird has a <A> body and <B> wings' for six colour pairs in both orders, "
        "how often the body and the wings are nearer their own colour than the other part's "
        "(0.5 when G ignores which part a colour names, 1 when it binds them)",
        "higher",
    ),
    "fid": ("FID (config.evaluate.fid_protocol) of the edits against the test images", "lower"),
    "inception_score": ("Inception Score of the edits (seed protocol, 10 splits)", "higher"),
    "inception_score_std": ("std of the Inception Score over the splits (N - 1)", "-"),
}
NOTHING_TO_MEASURE = (
    "no test image has what it measures (for a part: no ground-truth edit recolours it)"
)
# FID / IS -> the config.pretrained field of their converted Inception weights.
INCEPTION_WEIGHTS = {"fid": "fid_inception", "inception_score": "inception"}


@dataclasses.dataclass(frozen=True)
class Model:
    """Everything an evaluation needs: config, networks, G-EMA variables, frozen encoders."""

    config: ml_collections.ConfigDict
    networks: generate.Networks
    generator: dict[str, Any]  # {"params": G-EMA, "batch_stats": G's BatchNorm buffers}.
    frozen: dict[str, Any]
    vocabulary: Vocabulary
    step: int
    source: str  # What was evaluated, for the report.


def check_vocabulary(config: ml_collections.ConfigDict, vocabulary: Vocabulary, label: str) -> None:
    """Refuses a vocabulary other than the dataset's: the word ids would mean other words."""
    if tuple(loop.dataset_vocabulary(config)) != vocabulary.words:
        raise UserError(
            f"{label}: its vocabulary differs from dataset {config.data.name!r} in "
            f"{config.data.data_dir!r}; evaluate on the dataset the model was trained on"
        )


def load_workdir(config: ml_collections.ConfigDict | None, workdir: str) -> Model:
    """The Model of a workdir: its config (or `config`, which must agree), vocabulary, the latest
    checkpoint's G-EMA, and the frozen encoders drawn as training drew them."""
    saved = checkpoint.read_run_config(workdir)
    vocabulary = load_vocabulary_file(os.path.join(workdir, "vocabulary.json"))
    if config is None:
        config = saved
    else:
        config = loop.resolve_vocabulary(config, vocabulary.words)
        checkpoint.check_same_run(f"workdir {workdir}", json.loads(saved.to_json()), config)
    config = config.copy_and_resolve_references()
    check_vocabulary(config, vocabulary, f"workdir {workdir}")
    step, generator = checkpoint.restore_generator(workdir)
    frozen = loop.load_frozen(config, jax.random.fold_in(jax.random.PRNGKey(config.seed), 1))
    return Model(
        config=config,
        networks=generate.create_networks(config),
        generator=generator,
        frozen=frozen,
        vocabulary=vocabulary,
        step=step,
        source=f"workdir {os.path.abspath(workdir)}, G-EMA of step {step}",
    )


def load_params(
    config: ml_collections.ConfigDict,
    generator: str,
    text_encoder: str,
    image_encoder: str,
    vocabulary: str,
    vgg: str = "",
) -> Model:
    """The Model of params files (e.g. converted from netG_epoch_N.pth, which holds the EMA
    weights) and a JSON word list; `vgg` "" keeps config.pretrained.vgg."""
    words = load_vocabulary_file(vocabulary)
    config = loop.resolve_vocabulary(config, words.words)
    with config.unlocked():
        config.pretrained.text_encoder = text_encoder
        config.pretrained.image_encoder = image_encoder
        config.pretrained.vgg = vgg or config.pretrained.vgg
    check_vocabulary(config, words, vocabulary)
    return Model(
        config=config,
        networks=generate.create_networks(config),
        generator=params_io.load_variables(generator, "generator", config),
        frozen=loop.load_frozen(config, jax.random.fold_in(jax.random.PRNGKey(config.seed), 1)),
        vocabulary=words,
        step=0,
        source=f"params file {os.path.abspath(generator)}",
    )


def edit_images(
    networks: generate.Networks,
    generator: dict[str, Any],
    frozen: dict[str, Any],
    images: jax.Array,
    captions: jax.Array,
    lengths: jax.Array,
    z: jax.Array,
) -> dict[str, jax.Array]:
    """G-EMA (eval mode) edits of `images` for `captions`: edit, attention, sentence embedding."""
    outputs = generate.edit(
        networks, generator, frozen, images, captions, lengths, z, noise_rng=jax.random.PRNGKey(0)
    )
    return {key: outputs[key] for key in ("attention", "sentence")} | {"edit": outputs["image"]}


def sentence_of(
    networks: generate.Networks, frozen: dict[str, Any], captions: jax.Array, lengths: jax.Array
) -> jax.Array:
    """DAMSM sentence embeddings of captions."""
    return networks.text_encoder.apply(frozen["text_encoder"], captions, lengths)[1]


def paper_metrics(
    networks: generate.Networks,
    frozen: dict[str, Any],
    inputs: dict[str, jax.Array],
    *,
    mask_name: str,
    threshold: float,
) -> dict[str, jax.Array]:
    """Per-image metrics of mismatched-caption edits: mask scores, sharpness, MP, DAMSM code.

    `inputs`: original/edit pixels (0-255) and units ([-1, 1]), the caption's sentence, and the
    dataset mask under `mask_name` when there is one.
    """
    original, edit = inputs["original"], inputs["edit"]
    hm = mask_loss.background_mask(
        "hm", inputs["original_unit"], inputs["edit_unit"], None, threshold
    )
    code = networks.image_encoder.apply(frozen["image_encoder"], inputs["edit_unit"])[1]
    values = {
        "mask_score_hm": metrics.mask_score(original, edit, hm),
        "sharpness": metrics.sharpness_score(edit),
        "sharpness_real": metrics.sharpness_score(original),
        "mp": metrics.manipulative_precision(original, edit, code, inputs["sentence"]),
        "code": code,
    }
    if "mask" in inputs:
        values[mask_name] = metrics.mask_score(original, edit, inputs["mask"])
    return values


def toy_metrics(inputs: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """Per-image toy_birds ground-truth metrics of edit-caption edits (keys present decide)."""
    original, edit, target = inputs["original"], inputs["edit"], inputs["target"]
    values = {
        "edit_psnr": metrics.edit_psnr(edit, target),
        "edit_ssim": metrics.edit_ssim(edit, target),
        "background_change": metrics.background_change(original, edit, inputs["mask"]),
    }
    if "part_masks" in inputs and "edit_attributes" in inputs:
        palette = jnp.asarray(toy_birds.PALETTE_RGB)
        values["part_colour_accuracy"] = metrics.part_colour_accuracy(
            edit, inputs["part_masks"], inputs["edit_attributes"], palette
        )
        if "attributes" in inputs:
            edited = inputs["edit_attributes"] != inputs["attributes"]
            values["edited_part_accuracy"] = metrics.part_colour_accuracy(
                edit, inputs["part_masks"], inputs["edit_attributes"], palette, edited
            )
            for index, part in enumerate(toy_birds.PART_NAMES):
                values[edited_part_name(part)] = metrics.part_colour_accuracy(
                    edit,
                    inputs["part_masks"],
                    inputs["edit_attributes"],
                    palette,
                    edited & (jnp.arange(edited.shape[1]) == index),
                )
    if "attention" in inputs and "part_masks" in inputs:
        values["part_attention_lift"] = metrics.part_attention_lift(
            inputs["attention"], inputs["part_masks"], inputs["token_parts"]
        )
    return values


def caption_token_parts(
    words: Sequence[str], captions: np.ndarray, lengths: np.ndarray
) -> np.ndarray:
    """(B, T) int32: toy_birds.token_parts of each caption's words, -1 at padding."""
    parts = np.full(captions.shape, -1, np.int32)
    for row, (ids, length) in enumerate(zip(captions, lengths, strict=True)):
        parts[row, :length] = toy_birds.token_parts([words[i] for i in ids[:length]])
    return parts


def pixels_and_units(name: str, images: np.ndarray) -> dict[str, np.ndarray]:
    """`name` as 0-255 float pixels of its uint8 PNG values and `name_unit` in [-1, 1]."""
    pixels = pipeline.to_uint8(images)
    return {name: pixels.astype(np.float32), f"{name}_unit": pipeline.to_unit_range(pixels)}


def dataset_mask_name(config: ml_collections.ConfigDict) -> str:
    """The metric name of the mask score under the dataset's stored mask."""
    return "mask_score_gt" if config.data.name == "toy_birds" else "mask_score_fcn"


@dataclasses.dataclass
class Collected:
    """Per-image arrays of the whole pass (host-local), appended batch by batch."""

    columns: dict[str, list[np.ndarray]] = dataclasses.field(default_factory=dict)

    def add(self, values: Mapping[str, Any]) -> None:
        """Appends one batch's arrays."""
        for key, value in values.items():
            self.columns.setdefault(key, []).append(np.asarray(value))

    def arrays(self) -> dict[str, np.ndarray]:
        """Every column concatenated, gathered over processes in a multi-host run."""
        joined = {key: np.concatenate(parts) for key, parts in self.columns.items()}
        if jax.process_count() > 1:
            joined = {
                key: np.asarray(multihost_utils.process_allgather(value, tiled=True))
                for key, value in joined.items()
            }
        return joined


@dataclasses.dataclass
class Pass:
    """The outputs of one pass over the test split."""

    arrays: dict[str, np.ndarray]
    grid: list[dict[str, Any]]  # The first grid_rows valid examples: pixels, caption, attention.
    reals: list[tuple[np.ndarray, np.ndarray]]  # (uint8 test images, valid) per batch, for FID.
    fakes: list[tuple[np.ndarray, np.ndarray]]  # (uint8 mismatched edits, valid), FID and IS.


def count_batches(config: ml_collections.ConfigDict) -> int:
    """Batches of one evaluation pass over the test split (every example once, last padded)."""
    examples = pipeline.load_builder(config).info.splits["test"].num_examples
    return math.ceil(examples / config.evaluate.batch_size)


def eval_batches(config: ml_collections.ConfigDict) -> Iterator[dict[str, np.ndarray]]:
    """This host's test batches (global batch config.evaluate.batch_size), with `valid`."""
    yield from pipeline.create_dataset(
        config, "test", train=False, batch_size=config.evaluate.batch_size
    )


def run_pass(model: Model, keep_images: bool) -> Pass:
    """Generates and measures every test example once (see the module docstring); with
    `keep_images`, also keeps the uint8 test images and edits for FID and IS."""
    config = model.config
    networks, frozen, generator = model.networks, model.frozen, model.generator
    jit_edit = jax.jit(functools.partial(edit_images, networks))
    jit_sentence = jax.jit(functools.partial(sentence_of, networks))
    mask_name = dataset_mask_name(config)
    jit_paper = jax.jit(
        functools.partial(
            paper_metrics,
            networks,
            mask_name=mask_name,
            threshold=config.loss.g.mask_threshold,
        )
    )
    jit_toy = jax.jit(toy_metrics)
    collected, grid, reals, fakes = Collected(), [], [], []
    z_key = jax.random.fold_in(jax.random.PRNGKey(config.evaluate.seed), jax.process_index())
    progress = Progress(0, count_batches(config), "evaluate")
    try:
        for index, batch in enumerate(eval_batches(config)):
            z = generate.sample_z(jax.random.fold_in(z_key, index), len(batch["image"]), config)
            mismatched = jax.device_get(
                jit_edit(
                    generator,
                    frozen,
                    batch["image"],
                    batch["wrong_caption"],
                    batch["wrong_caption_length"],
                    z,
                )
            )
            inputs = {
                **pixels_and_units("original", batch["image"]),
                **pixels_and_units("edit", mismatched["edit"]),
                "sentence": mismatched["sentence"],
            }
            if "mask" in batch:
                inputs["mask"] = batch["mask"]
            values = jax.device_get(jit_paper(frozen, inputs))
            row = {
                "valid": batch["valid"],
                "wrong_caption": batch["wrong_caption"],
                "pool_caption": batch["caption"],
                "pool_sentence": jit_sentence(frozen, batch["caption"], batch["caption_length"]),
                "sentence": mismatched["sentence"],
                **values,
            }
            shown = {"caption": batch["wrong_caption"], **mismatched}
            if "edit_image" in batch:
                toy = jax.device_get(
                    jit_edit(
                        generator,
                        frozen,
                        batch["image"],
                        batch["edit_caption"],
                        batch["edit_caption_length"],
                        z,
                    )
                )
                toy_inputs = {
                    "original": inputs["original"],
                    "edit": pipeline.to_uint8(toy["edit"]).astype(np.float32),
                    "target": pipeline.to_uint8(batch["edit_image"]).astype(np.float32),
                    "mask": batch["mask"],
                }
                for key in ("part_masks", "edit_attributes", "attributes"):
                    if key in batch:
                        toy_inputs[key] = batch[key]
                if "part_masks" in batch:
                    toy_inputs["attention"] = toy["attention"]
                    toy_inputs["token_parts"] = caption_token_parts(
                        model.vocabulary.words, batch["edit_caption"], batch["edit_caption_length"]
                    )
                row.update(jax.device_get(jit_toy(toy_inputs)))
                shown = {"caption": batch["edit_caption"], "target": batch["edit_image"], **toy}
            collected.add(row)
            if keep_images:
                reals.append((pipeline.to_uint8(batch["image"]), batch["valid"]))
                fakes.append((pipeline.to_uint8(mismatched["edit"]), batch["valid"]))
            room = config.evaluate.grid_rows - len(grid)
            grid += grid_entries(batch, shown, batch["valid"], room)
            progress.update(index + 1)
    finally:
        progress.close()
    return Pass(arrays=collected.arrays(), grid=grid, reals=reals, fakes=fakes)


def grid_entries(
    batch: Mapping[str, np.ndarray], shown: Mapping[str, np.ndarray], valid: np.ndarray, room: int
) -> list[dict[str, Any]]:
    """Up to `room` valid rows of a batch for the figures (uint8 pixels, caption, attention)."""
    entries = []
    for i in np.flatnonzero(valid)[: max(room, 0)]:
        entry = {
            "original": pipeline.to_uint8(batch["image"][i]),
            "edit": pipeline.to_uint8(shown["edit"][i]),
            "caption": shown["caption"][i],
            "attention": np.asarray(shown["attention"][i]),
        }
        if "target" in shown:
            entry["target"] = pipeline.to_uint8(shown["target"][i])
        if "mask" in batch:
            entry["mask"] = np.round(batch["mask"][i] * 255).astype(np.uint8)
        entries.append(entry)
    return entries


def summarize(model: Model, arrays: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """Means over the valid examples of every per-image metric, plus R-precision; a metric that
    no valid example has a value for is skipped, not written as NaN."""
    valid = arrays["valid"]
    means = {
        name: metrics.valid_mean(arrays[name], valid)
        for name in METRICS
        if name in arrays and arrays[name].ndim == 1
    }
    values = {name: value for name, value in means.items() if not math.isnan(value)}
    skipped = {name: NOTHING_TO_MEASURE for name, value in means.items() if math.isnan(value)}
    evaluate = model.config.evaluate
    mean, std, candidates = metrics.r_precision(
        arrays["code"][valid],
        arrays["sentence"][valid],
        arrays["wrong_caption"][valid],
        arrays["pool_sentence"][valid],
        arrays["pool_caption"][valid],
        seed=evaluate.seed,
        repeats=evaluate.r_precision_repeats,
    )
    values.update(r_precision=mean, r_precision_std=std)
    return {"values": values, "skipped": skipped, "r_precision_candidates": candidates}


def inception_skips(config: ml_collections.ConfigDict) -> dict[str, str]:
    """Why FID or IS cannot be computed with this config, per metric ({} when both can)."""
    skipped = {}
    for name, field in INCEPTION_WEIGHTS.items():
        if not config.pretrained[field]:
            skipped[name] = (
                f"config.pretrained.{field} is not set (a converted Inception params file; "
                "none exists offline)"
            )
    return skipped


def inception_values(
    config: ml_collections.ConfigDict, result: Pass, skipped: Mapping[str, str]
) -> dict[str, float]:
    """FID (config.evaluate.fid_protocol, edits against test images) and IS of the edits, unless
    skipped."""
    values = {}
    if "fid" not in skipped:
        variables = fid.load_weights(config.pretrained.fid_inception, config)
        features = [
            fid.compute_features(
                variables, images, len(images), config.evaluate.fid_protocol, config
            )
            for images in (result.reals, result.fakes)
        ]
        values["fid"] = fid.fid_from_features(*features)
    if "inception_score" not in skipped:
        variables = inception_score.load_weights(config.pretrained.inception, config)
        probabilities = inception_score.compute_probabilities(
            variables, result.fakes, len(result.fakes), config
        )
        mean, std = inception_score.inception_score(probabilities)
        values.update(inception_score=mean, inception_score_std=std)
    return values


def metrics_record(model: Model, summary: Mapping[str, Any], count: int) -> dict[str, Any]:
    """The metrics.json record: values, what was skipped and why, and the protocol."""
    config = model.config
    return {
        "step": model.step,
        "source": model.source,
        "dataset": f"{config.data.name}/{config.data.builder_config or 'default'}",
        "image_size": config.data.image_size,
        "num_images": count,
        "metrics": summary["values"],
        "skipped": summary["skipped"],
        "protocol": {
            "split": "test, every example once, in order",
            "captions": "mismatched (wrong_caption, pairing seeded by config.seed); toy metrics "
            "use the ground-truth edit caption",
            "generator": "G-EMA parameters with G's BatchNorm buffers, eval mode",
            "uint8": "round and clip ((x + 1) * 127.5); the baseline truncates",
            "mask_hm_threshold": config.loss.g.mask_threshold,
            "fid_protocol": config.evaluate.fid_protocol,
            "r_precision_candidates": summary["r_precision_candidates"],
            "r_precision_repeats": config.evaluate.r_precision_repeats,
            "seed": config.evaluate.seed,
            "config_seed": config.seed,
        },
    }


def decode(model: Model, ids: np.ndarray) -> list[str]:
    """The words of a caption's ids."""
    return model.vocabulary.decode([int(i) for i in ids])


def write_figures(model: Model, out_dir: str, grid: list[dict[str, Any]], curves: str) -> list[str]:
    """edit_grid.png, attention.png and (given a metrics.jsonl) loss_curves.png; their names."""
    written = []
    if grid:
        keys = [k for k in ("original", "target", "edit", "mask") if k in grid[0]]
        headers = {"original": "original", "target": "true edit", "edit": "edited", "mask": "mask"}
        image = figures.grid_rows(
            [[entry[k] for k in keys] for entry in grid],
            [" ".join(decode(model, entry["caption"])) for entry in grid],
            [headers[k] for k in keys],
        )
        image.save(os.path.join(out_dir, "edit_grid.png"))
        words = [decode(model, entry["caption"]) for entry in grid]
        figures.attention_figure(
            [entry["edit"] for entry in grid], [entry["attention"] for entry in grid], words
        ).save(os.path.join(out_dir, "attention.png"))
        written += ["edit_grid.png", "attention.png"]
    series = read_curves(curves)
    if series:
        figures.line_charts(series).save(os.path.join(out_dir, "loss_curves.png"))
        written.append("loss_curves.png")
    return written


def read_curves(path: str) -> dict[str, tuple[list[float], list[float]]]:
    """Every scalar of a workdir's metrics.jsonl as (steps, values); {} without the file."""
    if not path or not os.path.isfile(path):
        return {}
    series: dict[str, tuple[list[float], list[float]]] = {}
    with open(path) as f:
        for line in f:
            record = json.loads(line)
            for key, value in record.items():
                if key != "step":
                    steps, values = series.setdefault(key, ([], []))
                    steps.append(record["step"])
                    values.append(value)
    return series


def format_value(value: float | None) -> str:
    """A metric value for Markdown tables ('-' when absent)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.4g}"


def report_markdown(record: Mapping[str, Any], images: list[str]) -> str:
    """report.md of one evaluation: the metrics table, skipped metrics, protocol, figures."""
    lines = [
        f"# Evaluation of {record['source']}",
        "",
        f"{record['num_images']} test images of {record['dataset']} at "
        f"{record['image_size']}x{record['image_size']}.",
        "",
        "| metric | value | better | meaning |",
        "|---|---|---|---|",
    ]
    for name, (meaning, better) in METRICS.items():
        if name in record["metrics"]:
            value = format_value(record["metrics"][name])
            lines.append(f"| {name} | {value} | {better} | {meaning} |")
    if record["skipped"]:
        lines += ["", "Skipped:", ""]
        lines += [f"- {name}: {reason}" for name, reason in record["skipped"].items()]
    lines += ["", "Protocol:", ""]
    lines += [f"- {key}: {value}" for key, value in record["protocol"].items()]
    lines += ["", *[f"![{name}]({name})" for name in images]]
    return "\n".join(lines) + "\n"


def evaluate_model(model: Model, out_dir: str, curves: str = "") -> str:
    """Runs the evaluation pass and writes metrics.json, report.md and figures to `out_dir`."""
    config = model.config
    skipped = inception_skips(config)
    result = run_pass(model, keep_images=len(skipped) < len(INCEPTION_WEIGHTS))
    summary = summarize(model, result.arrays)
    summary["values"].update(inception_values(config, result, skipped))
    summary["skipped"] = {**skipped, **summary["skipped"]}
    record = metrics_record(model, summary, int(result.arrays["valid"].sum()))
    if jax.process_index() == 0:
        os.makedirs(out_dir, exist_ok=True)
        images = write_figures(model, out_dir, result.grid, curves)
        if config.data.name == "toy_birds":
            manipulator = Manipulator(config, model.vocabulary, model.generator, model.frozen)
            rows = sweep.sweep_rows(manipulator, config.evaluate.sweep_images)
            record["metrics"].update(sweep.colour_following(rows))
            sweep.caption_sweep(rows).save(os.path.join(out_dir, sweep.SWEEP_FILE))
            images.append(sweep.SWEEP_FILE)
        record["figures"] = images
        with open(os.path.join(out_dir, "metrics.json"), "w") as f:
            json.dump(record, f, indent=2)
        with open(os.path.join(out_dir, "report.md"), "w") as f:
            f.write(report_markdown(record, images))
    return out_dir


def evaluate_workdir(
    config: ml_collections.ConfigDict | None, workdir: str, out_dir: str | None = None
) -> str:
    """Evaluates a workdir's latest checkpoint into out_dir (default <workdir>/eval/<step>)."""
    model = load_workdir(config, workdir)
    out_dir = out_dir or os.path.join(workdir, EVAL_DIR, str(model.step))
    return evaluate_model(model, out_dir, os.path.join(workdir, "metrics.jsonl"))


def evaluate_params(
    config: ml_collections.ConfigDict,
    out_dir: str,
    *,
    generator: str,
    text_encoder: str,
    image_encoder: str,
    vocabulary: str,
    vgg: str = "",
) -> str:
    """Evaluates params files (a converted PyTorch checkpoint) into `out_dir`."""
    model = load_params(config, generator, text_encoder, image_encoder, vocabulary, vgg)
    return evaluate_model(model, out_dir)
