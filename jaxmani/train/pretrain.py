"""`jaxmani pretrain`: DAMSM text and image encoder training (BASELINE_SPEC §5.3).

Loss w_loss0 + w_loss1 + s_loss0 + s_loss1 (no LAMBDA); Adam (0.5, 0.999) with the learning rate
multiplied by config.pretrain.lr_decay per epoch down to lr_min (the baseline re-creates Adam every
epoch, which jaxmani does not); the text encoder's gradient norm clipped at clip_norm. The small
image encoder trains whole; the Inception encoder trains only its two projections (its trunk comes
from config.pretrained.image_encoder, frozen in eval mode). Writes `text_encoder.msgpack`,
`image_encoder.msgpack` and `vocabulary.json` into the workdir, for config.pretrained.*.
"""

import json
import os
from collections.abc import Iterator, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import traverse_util

from jaxmani import params_io
from jaxmani.data import pipeline, toy_birds
from jaxmani.data.text import Vocabulary, tokenize
from jaxmani.errors import UserError
from jaxmani.losses import damsm
from jaxmani.models import registry
from jaxmani.progress import Progress
from jaxmani.train.loop import dataset_vocabulary, resolve_vocabulary

ENCODERS = ("text_encoder", "image_encoder")
PROJECTIONS = ("emb_features", "emb_cnn_code")  # The trainable part of the Inception encoder.


def pretrain_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The config with the pipeline batch size set to config.pretrain.batch_size."""
    config = config.copy_and_resolve_references()
    with config.unlocked():
        config.train.batch_size = config.pretrain.batch_size
    return config


def init_encoders(config: ml_collections.ConfigDict, rng: jax.Array) -> dict[str, Any]:
    """Text encoder from scratch; image encoder from scratch (small) or its given trunk."""
    variables = {
        name: registry.init_variables(name, config, jax.random.fold_in(rng, i))
        for i, name in enumerate(ENCODERS)
    }
    if config.model.image.encoder == "inception":
        path = config.pretrained.image_encoder
        if not path:
            raise UserError(
                "pretraining the Inception image encoder needs its ImageNet trunk: set "
                "--config.pretrained.image_encoder to a converted image_encoder params file, or "
                "use --config.model.image.encoder=small"
            )
        variables["image_encoder"] = params_io.load_variables(path, "image_encoder", config)
    return variables


def trainable_labels(config: ml_collections.ConfigDict, params: dict[str, Any]) -> dict[str, Any]:
    """Optimizer partition of {text_encoder, image_encoder} params: 'text', 'image' or 'frozen'."""
    inception = config.model.image.encoder == "inception"

    def image_label(path: tuple[str, ...]) -> str:
        return "image" if not inception or path[0] in PROJECTIONS else "frozen"

    flat_image = traverse_util.flatten_dict(params["image_encoder"])
    return {
        "text_encoder": jax.tree_util.tree_map(lambda _: "text", params["text_encoder"]),
        "image_encoder": traverse_util.unflatten_dict(
            {path: image_label(path) for path in flat_image}
        ),
    }


def create_optimizer(
    config: ml_collections.ConfigDict, params: dict[str, Any], steps_per_epoch: int
) -> optax.GradientTransformation:
    """Adam with the per-epoch staircase decay; text gradients clipped; frozen leaves untouched."""
    p = config.pretrain
    schedule = optax.exponential_decay(
        p.lr, steps_per_epoch, p.lr_decay, staircase=True, end_value=p.lr_min
    )
    adam = optax.adam(schedule, b1=0.5, b2=0.999, eps=1e-8)
    return optax.multi_transform(
        {
            "text": optax.chain(optax.clip_by_global_norm(p.clip_norm), adam),
            "image": adam,
            "frozen": optax.set_to_zero(),
        },
        trainable_labels(config, params),
    )


def damsm_losses(
    config: ml_collections.ConfigDict,
    modules: dict[str, Any],
    params: dict[str, Any],
    batch: Mapping[str, jax.Array],
    dropout_rng: jax.Array | None,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """w_loss0 + w_loss1 + s_loss0 + s_loss1 of a batch, with the terms and the embeddings."""
    train = dropout_rng is not None
    words, sentence = modules["text_encoder"].apply(
        {"params": params["text_encoder"]},
        batch["caption"],
        batch["caption_length"],
        train=train,
        rngs={"dropout": dropout_rng} if train else {},
    )
    image_vars = {"params": params["image_encoder"], **params.get("image_state", {})}
    region, code = modules["image_encoder"].apply(image_vars, batch["image"])
    g = config.loss.damsm
    mask = batch["caption"] == 0
    w0, w1, _ = damsm.words_loss(
        words, mask, region, batch["class_id"], g.gamma1, g.gamma2, g.gamma3
    )
    s0, s1 = damsm.sentence_loss(code, sentence, batch["class_id"], g.gamma3)
    terms = {"w_loss0": w0, "w_loss1": w1, "s_loss0": s0, "s_loss1": s1}
    return w0 + w1 + s0 + s1, {**terms, "code": code, "sentence": sentence}


def retrieval_hits(code: jax.Array, sentence: jax.Array) -> jax.Array:
    """Per image: does its own caption have the highest cosine among the batch's captions?"""
    code = code / jnp.maximum(jnp.linalg.norm(code, axis=-1, keepdims=True), 1e-8)
    sentence = sentence / jnp.maximum(jnp.linalg.norm(sentence, axis=-1, keepdims=True), 1e-8)
    scores = code @ sentence.T
    return jnp.argmax(scores, axis=-1) == jnp.arange(code.shape[0])


def split_params(variables: dict[str, Any]) -> dict[str, Any]:
    """{text_encoder, image_encoder} params plus the image encoder's non-param collections."""
    image = dict(variables["image_encoder"])
    return {
        "text_encoder": variables["text_encoder"]["params"],
        "image_encoder": image.pop("params"),
        "image_state": image,
    }


def evaluate(
    config: ml_collections.ConfigDict, modules: dict[str, Any], params: dict[str, Any]
) -> dict[str, float]:
    """Mean DAMSM loss and top-1 image-to-caption retrieval accuracy over the full test batches
    (the losses couple a batch's examples, so the padded last batch is left out)."""

    @jax.jit
    def eval_batch(batch):
        loss, aux = damsm_losses(config, modules, params, batch, None)
        return loss, jnp.mean(retrieval_hits(aux["code"], aux["sentence"]))

    losses, hits = [], []
    test = pipeline.create_dataset(config, "test", train=False)
    for batch in test:
        if not batch["valid"].all():
            continue
        loss, hit = eval_batch(dict(select_keys(batch)))
        losses.append(float(loss))
        hits.append(float(hit))
    if not losses:
        raise UserError(
            f"the test split has fewer examples than config.pretrain.batch_size="
            f"{config.pretrain.batch_size}; lower it"
        )
    return {
        "test/damsm_loss": float(np.mean(losses)),
        "test/top1_retrieval": float(np.mean(hits)),
        "test/chance": 1.0 / config.train.batch_size,
    }


def colour_cosines(
    config: ml_collections.ConfigDict,
    modules: dict[str, Any],
    params: dict[str, Any],
    vocabulary: Vocabulary,
) -> dict[str, float]:
    """Min, median and max cosine between the sentence embeddings of the toy probe sentence in
    each pair of colours the vocabulary knows: how far apart the text encoder keeps the colours
    that G reads (near 1 = one point, nothing for G to follow)."""
    known = [c for c in toy_birds.COLOR_NAMES if vocabulary.encode([c])]
    if len(known) < 2:
        return {}
    rng = np.random.default_rng(0)
    captions = [
        pipeline.fit_caption(
            np.asarray(vocabulary.encode(tokenize(toy_birds.PROBE_TEMPLATE.format(c))), np.int32),
            config.data.words_num,
            rng,
        )
        for c in known
    ]
    ids = np.stack([padded for padded, _ in captions])
    lengths = np.asarray([length for _, length in captions], np.int32)
    _, sentence = modules["text_encoder"].apply({"params": params["text_encoder"]}, ids, lengths)
    unit = np.asarray(sentence, np.float64)
    unit /= np.maximum(np.linalg.norm(unit, axis=-1, keepdims=True), 1e-12)
    cosines = (unit @ unit.T)[~np.eye(len(known), dtype=bool)]
    return {
        "test/colour_cosine_min": float(cosines.min()),
        "test/colour_cosine_median": float(np.median(cosines)),
        "test/colour_cosine_max": float(cosines.max()),
    }


def select_keys(batch: Mapping[str, np.ndarray]) -> Iterator[tuple[str, np.ndarray]]:
    """The batch keys DAMSM reads."""
    for key in ("image", "caption", "caption_length", "class_id"):
        yield key, batch[key]


def pretrain(config: ml_collections.ConfigDict, workdir: str) -> dict[str, float]:
    """Trains the DAMSM encoders for config.pretrain.num_steps, saves them, returns test metrics."""
    vocabulary = dataset_vocabulary(config)
    config = pretrain_config(resolve_vocabulary(config, vocabulary))
    modules = {name: registry.create_network(name, config) for name in ENCODERS}
    root = jax.random.PRNGKey(config.seed)
    params = split_params(init_encoders(config, root))
    train_set = pipeline.load_builder(config).info.splits["train"].num_examples
    steps_per_epoch = max(train_set // config.train.batch_size, 1)
    trainable = {k: params[k] for k in ENCODERS}
    optimizer = create_optimizer(config, trainable, steps_per_epoch)
    opt_state = optimizer.init(trainable)
    image_state = params["image_state"]

    @jax.jit
    def train_step(trainable, opt_state, batch, step):
        def loss_fn(trainable):
            full = {**trainable, "image_state": image_state}
            dropout = jax.random.fold_in(root, step)
            return damsm_losses(config, modules, full, batch, dropout)

        (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(trainable)
        updates, opt_state = optimizer.update(grads, opt_state, trainable)
        terms = {k: aux[k] for k in ("w_loss0", "w_loss1", "s_loss0", "s_loss1")}
        return optax.apply_updates(trainable, updates), opt_state, {"loss": loss, **terms}

    os.makedirs(workdir, exist_ok=True)
    iterator = iter(pipeline.create_dataset(config, "train"))
    log_path = os.path.join(workdir, "pretrain_metrics.jsonl")
    p = config.pretrain
    progress = Progress(0, p.num_steps, "pretrain")
    with open(log_path, "w") as log:
        for step in range(p.num_steps):
            batch = dict(select_keys(next(iterator)))
            trainable, opt_state, metrics = train_step(trainable, opt_state, batch, step)
            values = None
            if (step + 1) % p.log_every == 0 or step + 1 == p.num_steps:
                values = {k: float(v) for k, v in jax.device_get(metrics).items()}
                if not all(np.isfinite(v) for v in values.values()):
                    raise UserError(f"pretrain step {step + 1}: a DAMSM loss is not finite")
                log.write(json.dumps({"step": step + 1, **values}) + "\n")
                log.flush()
            progress.update(step + 1, values and {"loss": values["loss"]})
    progress.close()
    params = {**trainable, "image_state": image_state}
    results = evaluate(config, modules, params)
    if config.data.name == "toy_birds":
        results.update(colour_cosines(config, modules, params, Vocabulary(vocabulary)))
    save_encoders(workdir, params, vocabulary)
    with open(os.path.join(workdir, "pretrain_results.json"), "w") as f:
        json.dump(results, f, indent=2)
    return results


def save_encoders(workdir: str, params: dict[str, Any], vocabulary: tuple[str, ...]) -> None:
    """Writes the two encoders' params files and the vocabulary they were trained on."""
    params_io.save_variables(
        os.path.join(workdir, "text_encoder.msgpack"),
        "text_encoder",
        {"params": params["text_encoder"]},
        source="jaxmani pretrain",
    )
    params_io.save_variables(
        os.path.join(workdir, "image_encoder.msgpack"),
        "image_encoder",
        {"params": params["image_encoder"], **params["image_state"]},
        source="jaxmani pretrain",
    )
    with open(os.path.join(workdir, "vocabulary.json"), "w") as f:
        json.dump(list(vocabulary), f)
