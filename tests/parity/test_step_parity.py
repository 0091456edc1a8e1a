"""One full training iteration against the PyTorch restatement (BASELINE_SPEC §4.2-4.4, §5.1).

Both sides start from the same weights (seeded PyTorch G, D, text encoder, Inception image
encoder and VGG, converted by jaxmani's converter), see the same batch in the same order and the
same injected z and CA eps, and run one D step, one G step against the updated D, both Adam
updates and G's EMA. Compared after the iteration:

* every loss term, mapping names and weights (the restatement reports the two adversarial halves
  and the DAMSM, perceptual and mask terms times their weights; jaxmani the unweighted terms);
* the gradients, read from both optimizers: after one step Adam's first moment is exactly
  (1 - b1) g on both sides;
* the updated parameters of G and D and G's EMA. Adam's first update is -lr f(g) with
  f(g) = g / (|g| + eps), which is lr sign(g) except where |g| is near eps, and
  |f(g1) - f(g2)| <= |g1 - g2| / eps. So each element must lie within
  lr min(2, |g_jax - g_torch| / eps) of PyTorch's (the "Adam bound", with the gradient differences
  measured above), plus the rounding of one update; the report also shows the raw difference;
* the BatchNorm running statistics of G (one train-mode forward) and of D (updated by every D call,
  in the baseline's call order).

float64 (both frameworks in double, seed config with M_loss and SAD on) is the exact check: a
fully float64 step agrees to ~1e-13. jaxmani's Inception BatchNorm computes in float32 whatever its
input (models/inception.py gives layers.BatchNorm no dtype). While the traced step holds float32
values, the exact tolerances are out of reach: the test then asserts the tolerances float32
rounding of the Inception features (~1e-7 relative) explains, terms that see no generated image
still at 1e-12, and reports an xfail naming the cause. Gradients are then checked like float32's
(see below): a 1e-7 perturbation already crosses an occasional kink (G gradients 1e-3 relative L2
in one build, 7e-7 in another).

float32 (upstream config) runs with the D learning rate 0, so the G step sees the same D on both
sides. At the baseline rate, Adam's sign-like first step turns float32 noise on near-zero D
gradient elements into +-lr parameter differences that then dominate every G-step quantity
(measured: 1.6e-4 relative on g_adversarial, 3% on G's gradients). The D update itself is checked
in float64. G's gradients also differ by more than float32 rounding of single operations: the
generated image carries ~4e-5 float32 error on either side, and the gradients of the frozen
Inception and VGG (eval-mode ReLU nets: piecewise constant in their input) and of D (LeakyReLU)
jump where that error crosses a kink. Measured: PyTorch float32 vs PyTorch float64 G gradients
differ by 3.2e-3 (relative L2) and 8.4e-3 (largest leaf, relative to the leaf's largest entry);
perturbing the image by jaxmani's float32 error changes PyTorch's exact float64 input gradient of
the Inception by 4.9e-3 and of the VGG by 3.6e-3. One crossed kink in D's 8x8 layer moved
img_code_s32's kernel gradient by 10% of its largest entry (4e-3 relative L2 over D), reproduced
exactly by PyTorch float64 fed jaxmani's float32 image. So float32 gradients are checked in
relative L2 at 1e-2; the per-leaf maxima are reported only.
"""

import concurrent.futures
import copy
import dataclasses
import functools
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from flax import traverse_util  # noqa: E402

from jaxmani import generate  # noqa: E402
from jaxmani.convert import converter, rules  # noqa: E402
from jaxmani.models import registry  # noqa: E402
from jaxmani.train import state as state_lib  # noqa: E402
from jaxmani.train import step as step_lib  # noqa: E402
from tests.parity.conftest import (  # noqa: E402
    condition_weights,
    convert_module,
    nhwc_to_torch,
    small_gan_config,
)
from tests.parity.test_gan_parity import torch_generator  # noqa: E402
from third_party import lightweight_torch as lt  # noqa: E402
from third_party.lightweight_torch import train_step as lt_step  # noqa: E402

pytestmark = [pytest.mark.parity, pytest.mark.slow]

BATCH = 3  # cond_wrong sees B - 1 = 2 samples (its own BatchNorm batch of 2).
WORDS_NUM = 7  # jaxmani pads to 7 columns; PyTorch keeps the longest caption's 6.
LENGTHS = (4, 6, 2)  # Not sorted: the attention-mask tiling and cond_wrong follow batch order.
CLASS_IDS = (3, 7, 3)  # Samples 0 and 2 share a class: DAMSM masks them as negatives.
B1 = lt_step.BETAS[0]
ADAM_EPS = lt_step.ADAM_EPS
EXTRAS = {"mask_weight": 25.0, "sad": True, "sad_kernel": 9}  # Seed M_loss and SAD.
FLOAT32_D_LR = 0.0  # See the module docstring.
# Terms that see no generated image (only real images, text and D before its update).
REAL_ONLY_TERMS = ("d_cond_real", "d_cond_wrong", "d_uncond_real", "d_sad", "g_kl")

# loss: every loss term, relative to max(1, |value|); real_only: REAL_ONLY_TERMS likewise;
# grad_leaf: max |g_jax - g_torch| per leaf relative to the leaf's max |g| (None: report only);
# grad_l2: |g_jax - g_torch| / |g_torch| over all of a player's parameters, and the reported
# gradient norm; stats: BatchNorm running statistics relative to max(1, |value|); param: the
# rounding allowance beyond the Adam bound, relative to max(1, |value|) (4 eps of the dtype).
# Measured (2 cores, this commit) in brackets.
TOLERANCES = {
    "float32": {
        "loss": 2e-5,  # [3.4e-6]
        "real_only": 2e-5,  # [1.5e-6]
        "grad_leaf": None,  # [G 1.9e-2, D 1.4e-5]
        "grad_l2": 1e-2,  # [G 7.7e-3, D 8e-6; 4.4e-3 with one crossed kink]
        "stats": 2e-5,  # [G 1.1e-7, D 6.6e-7]
        "param": 4 * float(np.finfo(np.float32).eps),  # [1.9e-9, EMA 7.2e-8]
    },
    "float64": {  # A fully float64 step (Inception BatchNorm fixed): all measured <= 5e-13.
        "loss": 1e-11,
        "real_only": 1e-12,
        "grad_leaf": 1e-10,
        "grad_l2": 1e-11,
        "stats": 1e-11,
        "param": 4 * float(np.finfo(np.float64).eps),
    },
    "float64_with_float32_values": {  # jaxmani's Inception BatchNorm rounds to float32.
        "loss": 2e-6,  # [8e-8 .. 2.5e-7]
        "real_only": 1e-12,  # [3.1e-15]
        "grad_leaf": None,  # [G 1.6e-6 .. 2e-3 (kink), D 2.3e-7]
        "grad_l2": 1e-2,  # [G 7.3e-7 .. 9.8e-4 (kink), D 8.8e-8]
        "stats": 5e-6,  # [G 1.6e-9, D 4.9e-8 .. 3.0e-7]
        "param": 4 * float(np.finfo(np.float64).eps),  # [0]
    },
}


def step_config(extras):
    """The parity config: small widths at 256x256, every compat switch on, seed extras if asked."""
    config = small_gan_config(**{name: True for name in small_gan_config().compat})
    config.data.words_num = WORDS_NUM
    config.model.image.encoder = "inception"
    if extras:
        config.loss.g.mask_weight = EXTRAS["mask_weight"]
        config.loss.g.mask_source = "gt"
        config.loss.d.sad_weight = 1.0
        config.loss.d.sad_filter = "seed"  # The seed's grey, zero-padded box blur.
        config.loss.d.sad_kernel = EXTRAS["sad_kernel"]
        config.loss.d.sad_kernel_max = 0
    return config


def torch_nets(config):
    """Seeded PyTorch G, D, text encoder, Inception image encoder and VGG (float32)."""
    model = config.model
    netG = torch_generator(config)
    torch.manual_seed(1)
    netD = lt.D_NET256(df_dim=model.d.df_dim, embedding_dim=model.embedding_dim)
    netD.apply(lt.weights_init)
    with torch.no_grad():
        for m in netD.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    torch.manual_seed(2)
    text_encoder = lt.RNN_ENCODER(
        model.text.vocab_size, ninput=model.text.word_dim, nhidden=model.embedding_dim
    )
    torch.manual_seed(3)
    image_encoder = condition_weights(lt.CNN_ENCODER(model.embedding_dim), seed=3)
    torch.manual_seed(4)
    vgg = lt.VGGNet()
    vgg.vgg = condition_weights(vgg.vgg[: lt.encoders.VGG_RELU2_2 + 1], seed=4)
    return {
        "netG": netG,
        "netD": netD,
        "text_encoder": text_encoder.eval(),
        "image_encoder": image_encoder.eval(),
        "vgg": vgg.eval(),
    }


def convert_nets(tmp_path, nets, config):
    """jaxmani variables of every network, through the converter (a PyTorch file each)."""
    holder = torch.nn.Module()  # torchvision's key names: features.N.
    holder.features = nets["vgg"].vgg
    modules = {
        "generator": nets["netG"],
        "discriminator": nets["netD"],
        "text_encoder": nets["text_encoder"],
        "image_encoder": nets["image_encoder"],
        "vgg": holder,
    }
    return {name: convert_module(tmp_path, name, m, config) for name, m in modules.items()}


def make_inputs(config):
    """Seeded batch (NHWC images, 0-padded captions in batch order, class ids, mask) and noise."""
    rng = np.random.default_rng(7)
    size, vocab = config.data.image_size, config.model.text.vocab_size
    captions = np.zeros((BATCH, WORDS_NUM), np.int32)
    for i, n in enumerate(LENGTHS):
        captions[i, :n] = rng.integers(1, vocab, n)
    # Smooth-ish images: a random low-frequency field plus noise, clipped to [-1, 1].
    coarse = rng.uniform(-1, 1, (BATCH, 8, 8, 3))
    image = np.repeat(np.repeat(coarse, size // 8, axis=1), size // 8, axis=2)
    image = np.clip(0.7 * image + 0.3 * rng.uniform(-1, 1, image.shape), -1, 1)
    mask = np.ones((BATCH, size, size, 1))
    for b in range(BATCH):  # Background = 1 outside a per-sample box.
        top, left = rng.integers(16, 96, 2)
        mask[b, top : top + 128, left : left + 128] = 0.0
    batch = {
        "image": image.astype(np.float32),
        "caption": captions,
        "caption_length": np.asarray(LENGTHS, np.int32),
        "class_id": np.asarray(CLASS_IDS, np.int32),
        "mask": mask.astype(np.float32),
    }
    noise = {
        "z": rng.standard_normal((BATCH, config.model.g.z_dim)).astype(np.float32),
        "ca_eps": rng.standard_normal((BATCH, config.model.g.condition_dim)).astype(np.float32),
    }
    return batch, noise


def cast_floats(tree, dtype):
    """Every floating leaf of a pytree as a numpy array of `dtype`; other leaves unchanged."""

    def cast(x):
        x = np.asarray(x)
        return x.astype(dtype) if np.issubdtype(x.dtype, np.floating) else x

    return jax.tree_util.tree_map(cast, tree)


def float32_values(jaxpr):
    """Number of float32 intermediate values in a jaxpr and its sub-jaxprs (scan, jvp, ...)."""
    count = 0
    for eqn in jaxpr.eqns:
        count += sum(getattr(v.aval, "dtype", None) == np.float32 for v in eqn.outvars)
        for value in eqn.params.values():
            for item in value if isinstance(value, tuple | list) else (value,):
                inner = getattr(item, "jaxpr", item)
                if hasattr(inner, "eqns"):
                    count += float32_values(inner)
    return count


def run_jax(config, variables, batch, noise, dtype):
    """jaxmani's train_step once from the converted weights.

    Returns the new state, the metrics and the number of float32 values inside the step.
    """
    networks = generate.create_networks(config)
    discriminator = registry.create_network("discriminator", config)
    if dtype == "float64":  # G and D take a computation dtype; the encoders follow their inputs.
        wide = {"dtype": jnp.float64, "param_dtype": jnp.float64}
        networks = dataclasses.replace(networks, generator=networks.generator.clone(**wide))
        discriminator = discriminator.clone(**wide)
    models = step_lib.StepModels(networks=networks, discriminator=discriminator, config=config)
    variables = cast_floats(variables, dtype)
    g_vars, d_vars = variables["generator"], variables["discriminator"]
    state = state_lib.TrainState(
        step=jnp.zeros((), jnp.int32),
        g_params=g_vars["params"],
        g_batch_stats=g_vars["batch_stats"],
        g_ema=g_vars["params"],
        d_params=d_vars["params"],
        d_batch_stats=d_vars["batch_stats"],
        g_opt_state=state_lib.create_optimizer(config.optim.g).init(g_vars["params"]),
        d_opt_state=state_lib.create_optimizer(config.optim.d).init(d_vars["params"]),
        rng=jax.random.key(0),
    )
    frozen = {name: variables[name] for name in generate.FROZEN_NETWORKS}
    # float32: LLVM -O0 compiles in a quarter of the time (about 20 s instead of 80 s on 2 cores)
    # and runs as fast, XLA's float32 convolutions being library calls. Its float64 ones are not:
    # at -O0 they run 6 times slower, so float64 keeps the default.
    options = {"xla_backend_optimization_level": 0} if dtype == "float32" else None
    step = jax.jit(functools.partial(step_lib.train_step, models=models), compiler_options=options)
    args = (state, cast_floats(batch, dtype), frozen, cast_floats(noise, dtype))
    traced = step.trace(*args)
    new_state, metrics = traced.lower().compile()(*args)
    metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
    return jax.device_get(new_state), metrics, float32_values(traced.jaxpr.jaxpr)


def run_torch(nets, batch, noise, config, extras, dtype):
    """The restatement's train_iteration once on copies of `nets`; returns nets, optims, values."""
    nets = {name: copy.deepcopy(m) for name, m in nets.items()}
    if dtype == "float64":
        nets = {name: m.double() for name, m in nets.items()}
    optimizers = lt_step.make_optimizers(
        nets["netG"], nets["netD"], lr_g=config.optim.g.lr, lr_d=config.optim.d.lr
    )
    ema = lt_step.init_ema(nets["netG"])
    tdtype = torch.float64 if dtype == "float64" else torch.float32
    torch_batch = {
        "images": nhwc_to_torch(batch["image"]).to(tdtype),
        "captions": torch.from_numpy(batch["caption"].astype(np.int64)),
        "cap_lens": torch.from_numpy(batch["caption_length"].astype(np.int64)),
        "class_ids": torch.from_numpy(batch["class_id"].astype(np.int64)),
        "mask": nhwc_to_torch(batch["mask"]).to(tdtype),
    }
    torch_noise = {k: torch.from_numpy(v).to(tdtype) for k, v in noise.items()}
    values = lt_step.train_iteration(
        nets, optimizers, torch_batch, torch_noise, EXTRAS if extras else None, ema=ema
    )
    return nets, optimizers, ema, values


def to_flax(network, tensors, reference):
    """PyTorch name -> tensor into jaxmani's flat (collection, *path) layout, without casting."""
    flat = {}
    for key, tensor in tensors.items():
        if rules.is_ignored(network, key):
            continue
        collection, path = rules.flax_path(network, key, tensor.ndim)
        target = (collection, *path)
        array = tensor.detach().cpu().numpy()
        flat[target] = converter.to_flax_layout(array, path[-1], tuple(reference[target].shape))
    return flat


def flat_state(params, batch_stats=None):
    """jaxmani params (and batch_stats) as a flat (collection, *path) -> array dict."""
    tree = {"params": params}
    if batch_stats is not None:
        tree["batch_stats"] = batch_stats
    return traverse_util.flatten_dict(tree)


def loss_pairs(metrics, values, config):
    """(name, jaxmani value, restatement value), mapping the two sides' names and weights.

    The restatement reports the adversarial halves, the DAMSM losses times lambda, the perceptual
    MSE times 0.5 and M_loss times 25; jaxmani the sum of the halves and the unweighted terms.
    """
    g = config.loss.g
    pairs = [
        ("d_cond_real", metrics["d_cond_real"], values["d_cond_real"]),
        ("d_cond_fake", metrics["d_cond_fake"], values["d_cond_fake"]),
        ("d_cond_wrong", metrics["d_cond_wrong"], values["d_cond_wrong"]),
        ("d_uncond_real", metrics["d_uncond_real"], values["d_real_uncond"]),
        ("d_uncond_fake", metrics["d_uncond_fake"], values["d_fake_uncond"]),
        ("d_loss", metrics["d_loss"], values["errD"]),
        ("g_adversarial", metrics["g_adversarial"], values["g_cond"] + values["g_uncond"]),
        ("g_word", metrics["g_word"], values["w_loss0"] + values["w_loss1"]),
        ("g_word*lambda", g.word_weight * metrics["g_word"], values["w_loss"]),
        ("g_sentence", metrics["g_sentence"], values["s_loss0"] + values["s_loss1"]),
        ("g_sentence*lambda", g.sentence_weight * metrics["g_sentence"], values["s_loss"]),
        ("g_perceptual*0.5", g.perceptual_weight * metrics["g_perceptual"], values["perceptual"]),
        ("g_kl", metrics["g_kl"], values["kl"]),
        ("g_loss", metrics["g_loss"], values["errG_total"]),
    ]
    if config.loss.d.sad_weight:
        pairs.append(("d_sad", metrics["d_sad"], values["d_cond_blur"]))
    if g.mask_weight:
        pairs.append(("g_mask*25", g.mask_weight * metrics["g_mask"], values["mask"]))
    return pairs


class Report:
    """Measured differences with their tolerances; prints as a table, lists the failures."""

    def __init__(self, title):
        self.title, self.rows = title, []

    def add(self, name, value, tolerance, detail=""):
        """Records one quantity; tolerance None means reported only."""
        self.rows.append((name, float(value), tolerance, detail))

    def text(self):
        """The table."""
        lines = [self.title]
        for name, value, tolerance, detail in self.rows:
            tol = "report only" if tolerance is None else f"tol {tolerance:.0e}"
            lines.append(f"  {name:34s} {value:9.3g}  ({tol}) {detail}")
        return "\n".join(lines)

    def failures(self):
        """Rows above their tolerance (NaN counts as a failure)."""
        return [r for r in self.rows if r[2] is not None and not r[1] <= r[2]]


def compare_losses(report, metrics, values, config, tol):
    """Loss terms, relative to max(1, |value|)."""
    exact_err, worst_exact, err, worst = 0.0, "", 0.0, ""
    for name, ours, theirs in loss_pairs(metrics, values, config):
        diff = abs(ours - theirs) / max(1.0, abs(theirs))
        if name in REAL_ONLY_TERMS and diff >= exact_err:
            exact_err, worst_exact = diff, name
        if diff >= err:
            err, worst = diff, name
    report.add("loss terms", err, tol["loss"], worst)
    report.add("loss terms of real images only", exact_err, tol["real_only"], worst_exact)


def compare_player(report, player, jax_state, metrics, torch_side, tol, lr, config):
    """Gradients, updated parameters, BatchNorm statistics (and G's EMA) of one player."""
    nets, optimizers, ema, _ = torch_side
    network = {"G": "generator", "D": "discriminator"}[player]
    prefix = player.lower()
    module, optimizer = nets[f"net{player}"], optimizers[f"net{player}"]
    params = getattr(jax_state, f"{prefix}_params")
    ours_flat = flat_state(params, getattr(jax_state, f"{prefix}_batch_stats"))

    # Gradients: after one step both first moments hold exactly (1 - b1) * g.
    ours_grad = {
        k: np.asarray(v) / (1 - B1)
        for k, v in flat_state(getattr(jax_state, f"{prefix}_opt_state")[0].mu).items()
    }
    theirs_grad = to_flax(
        network,
        {n: optimizer.state[p]["exp_avg"] / (1 - B1) for n, p in module.named_parameters()},
        ours_flat,
    )
    assert ours_grad.keys() == theirs_grad.keys()
    grad_diff = {k: np.abs(ours_grad[k] - theirs) for k, theirs in theirs_grad.items()}
    leaf_err, worst = 0.0, ""
    for key, theirs in theirs_grad.items():
        err = float(np.max(grad_diff[key])) / max(float(np.max(np.abs(theirs))), 1e-300)
        if err >= leaf_err:
            leaf_err, worst = err, "/".join(key[1:])
    norm = float(np.sqrt(sum(np.sum(np.square(g)) for g in theirs_grad.values())))
    l2 = float(np.sqrt(sum(np.sum(np.square(d)) for d in grad_diff.values()))) / norm
    report.add(f"{player} gradients, max per leaf", leaf_err, tol["grad_leaf"], worst)
    report.add(f"{player} gradients, relative L2", l2, tol["grad_l2"], f"|g| = {norm:.4g}")
    reported = metrics[f"{prefix}_grad_norm"]
    report.add(f"{player} gradient norm metric", abs(reported - norm) / norm, tol["grad_l2"])

    # Parameters and running statistics.
    theirs_flat = to_flax(network, dict(module.state_dict()), ours_flat)
    assert ours_flat.keys() == theirs_flat.keys()
    beyond, largest, stats_err = 0.0, 0.0, 0.0
    for key, theirs in theirs_flat.items():
        diff = np.abs(np.asarray(ours_flat[key]) - theirs)
        scale = np.maximum(1.0, np.abs(theirs))
        if key[0] == "batch_stats":
            stats_err = max(stats_err, float(np.max(diff / scale)))
            continue
        adam = 1.01 * lr * np.minimum(2.0, grad_diff[key] / ADAM_EPS)
        beyond = max(beyond, float(np.max(np.maximum(diff - adam, 0.0) / scale)))
        largest = max(largest, float(np.max(diff)))
    report.add(f"{player} BN running stats", stats_err, tol["stats"])
    report.add(f"{player} params beyond Adam bound", beyond, tol["param"], f"lr {lr:g}")
    report.add(f"{player} params max |diff|", largest, None, f"2 lr = {2 * lr:g}")
    if player == "G":
        decay = config.optim.ema_decay
        ours_ema = flat_state(jax_state.g_ema)
        theirs_ema = to_flax(network, ema, ours_flat)
        beyond = 0.0
        for key, theirs in theirs_ema.items():
            diff = np.abs(np.asarray(ours_ema[key]) - theirs)
            adam = 1.01 * (1 - decay) * lr * np.minimum(2.0, grad_diff[key] / ADAM_EPS)
            scale = np.maximum(1.0, np.abs(theirs))
            beyond = max(beyond, float(np.max(np.maximum(diff - adam, 0.0) / scale)))
        report.add("G EMA beyond Adam bound", beyond, tol["param"])


@pytest.fixture(scope="module")
def parity_setup(tmp_path_factory):
    """Seeded torch nets, their converted variables and the inputs (shared by the variants)."""
    config = step_config(extras=False)
    nets = torch_nets(config)
    variables = convert_nets(tmp_path_factory.mktemp("step"), nets, config)
    batch, noise = make_inputs(config)
    return nets, variables, batch, noise


def build_report(title, jax_state, metrics, torch_side, config, tol):
    """Every comparison of one iteration at the tolerances `tol`."""
    report = Report(title)
    compare_losses(report, metrics, torch_side[3], config, tol)
    for player in ("G", "D"):
        lr = config.optim[player.lower()].lr
        compare_player(report, player, jax_state, metrics, torch_side, tol, lr, config)
    return report


@pytest.mark.parametrize(
    ("dtype", "extras"),
    [("float32", False), ("float64", True)],
    ids=["float32-upstream", "float64-seed_mask_sad"],
)
def test_train_step_matches_pytorch(parity_setup, dtype, extras):
    nets, variables, batch, noise = parity_setup
    config = step_config(extras)
    if dtype == "float32":
        config.optim.d.lr = FLOAT32_D_LR
    start = time.perf_counter()
    # PyTorch runs beside XLA's (single-threaded) compilation.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        torch_future = pool.submit(run_torch, nets, batch, noise, config, extras, dtype)
        with jax.enable_x64(dtype == "float64"):
            jax_state, metrics, float32_count = run_jax(config, variables, batch, noise, dtype)
        torch_side = torch_future.result()
    seconds = time.perf_counter() - start
    assert int(jax_state.step) == 1
    title = f"{dtype}, {'seed M_loss + SAD' if extras else 'upstream, D lr 0'}, {seconds:.0f} s"
    if dtype == "float64":
        title += f", {float32_count} float32 values in the step"
    report = build_report(title, jax_state, metrics, torch_side, config, TOLERANCES[dtype])
    print(report.text())
    failures = report.failures()
    if failures and dtype == "float64" and float32_count:
        loose = TOLERANCES["float64_with_float32_values"]
        rounded = build_report(title, jax_state, metrics, torch_side, config, loose)
        assert not rounded.failures(), rounded.text() + "\nfailed even at float32 rounding"
        name, value, tolerance, _ = failures[0]
        pytest.xfail(
            f"float64 parity only at float32-rounding tolerances ({len(failures)} quantities beyond"
            f" the exact ones, e.g. {name} {value:.1e} > {tolerance:.0e}): {float32_count} float32"
            " values in the float64 train_step, from the BatchNorm of jaxmani/models/inception.py"
        )
    assert not failures, report.text() + "\nfailed: " + ", ".join(r[0] for r in failures)
