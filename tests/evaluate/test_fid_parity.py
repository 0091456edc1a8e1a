"""FID against pytorch-fid itself: its CLI pipeline and the seed's call, with random weights.

pytorch-fid's `InceptionV3` loads its weights file strictly; its download is replaced by a file
that this test saves from a seeded FID Inception, so the file has the real file's key layout.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
fid_score = pytest.importorskip("pytorch_fid.fid_score")

from PIL import Image  # noqa: E402
from pytorch_fid import inception as fid_torch  # noqa: E402

from configs import default  # noqa: E402
from jaxmani.convert import converter  # noqa: E402
from jaxmani.evaluate import fid  # noqa: E402
from tests.evaluate.test_fid import padded_batches  # noqa: E402
from tests.parity.conftest import assert_close, condition_weights  # noqa: E402
from tests.parity.test_encoders_parity import fid_inception_without_download  # noqa: E402

pytestmark = pytest.mark.parity
BATCH = 2
SHAPES = {"a": (3, 256, 256), "b": (2, 320, 301)}  # (images, height, width) of each folder.


def smooth_noise_images(rng, count, height, width):
    """uint8 gradients plus noise: nonzero at every border, so padding choices show."""
    yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
    images = []
    for _ in range(count):
        base = rng.uniform(40, 200, 3) + 50 * np.stack([yy, xx, yy * xx], axis=-1)
        images.append(np.clip(base + rng.normal(0, 25, (height, width, 3)), 0, 255))
    return np.stack(images).astype(np.uint8)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """pytorch-fid's model on a saved weights file, our params converted from it, PNG folders."""
    root = tmp_path_factory.mktemp("fid_parity")
    weights = root / "pt_inception-random.pth"
    torch.save(condition_weights(fid_inception_without_download(), seed=9).state_dict(), weights)
    config = default.get_config()
    variables = converter.convert_file(
        "fid_inception", str(weights), str(root / "fid_inception.msgpack"), config
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            fid_torch,
            "load_state_dict_from_url",
            lambda url, progress=True: torch.load(weights, weights_only=True),
        )
        model = fid_torch.InceptionV3([3]).eval()  # The seed's FidCalculater network.
    rng = np.random.default_rng(9)
    folders = {}
    for name, (count, height, width) in SHAPES.items():
        folders[name] = root / name
        folders[name].mkdir()
        for i, image in enumerate(smooth_noise_images(rng, count, height, width)):
            Image.fromarray(image).save(folders[name] / f"{i}.png")
    return {
        "model": model,
        "variables": variables,
        "folders": folders,
        "config": config,
    }


def read_folder(folder):
    """The folder's PNGs as pytorch-fid orders and decodes them: sorted, RGB uint8."""
    return np.stack(
        [np.asarray(Image.open(p).convert("RGB")) for p in sorted(folder.glob("*.png"))]
    )


def our_features(setup, images, protocol):
    """compute_features over padded batches of BATCH."""
    batches = padded_batches(images, BATCH)
    return fid.compute_features(
        setup["variables"], batches, -(-len(images) // BATCH), protocol, setup["config"]
    )


def span_basis(*feature_sets):
    """An orthonormal (2048, k) basis of the span of every row of every set.

    It holds all means and centred rows, so each set's covariance and every mean difference live
    in it: the FID of features projected onto it equals the 2048-d FID (rotation invariance) and
    needs a k x k sqrtm instead of pytorch-fid's 2048 x 2048 one (a minute on 2 CPU cores).
    """
    basis, _ = np.linalg.qr(np.concatenate(feature_sets).T)
    return basis


@pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning")  # Rank-deficient products.
def test_pool3_and_fid_match_the_pytorch_fid_cli(setup, monkeypatch):
    recorded = []
    get_activations = fid_score.get_activations

    def recording(*args, **kwargs):
        recorded.append(get_activations(*args, **kwargs))
        return recorded[-1]

    monkeypatch.setattr(fid_score, "get_activations", recording)
    with torch.no_grad():  # The CLI's statistics step: file listing, decoding, batches, model.
        theirs = [
            fid_score.compute_statistics_of_path(
                str(setup["folders"][name]), setup["model"], BATCH, 2048, "cpu", num_workers=0
            )
            for name in ("a", "b")
        ]
    ours = [our_features(setup, read_folder(setup["folders"][n]), "pytorch_fid") for n in "ab"]
    for mine, activations in zip(ours, recorded, strict=True):
        assert_close(mine, activations)
    basis = span_basis(*ours, *recorded)
    expected = fid_score.calculate_frechet_distance(
        *(part for mu, sigma in theirs for part in (mu @ basis, basis.T @ sigma @ basis))
    )
    assert fid.fid_from_features(*(f @ basis for f in ours)) == pytest.approx(expected, rel=1e-3)
    assert fid.fid_from_features(*(f @ basis for f in recorded)) == pytest.approx(
        expected, rel=1e-6
    )


def test_seed_train_matches_the_seeds_call_on_generator_range_images(setup):
    images = read_folder(setup["folders"]["a"])[:1]  # Our batch of BATCH pads it.
    generator_range = images.astype(np.float32) / 127.5 - 1
    with torch.no_grad():
        (expected,) = setup["model"](torch.from_numpy(generator_range.transpose(0, 3, 1, 2)))
    ours = our_features(setup, generator_range, "seed_train")
    assert_close(ours, expected.flatten(1).numpy())
