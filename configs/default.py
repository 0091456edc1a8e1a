"""Every jaxmani configuration field, with the paper's bird values where they exist.

Experiment configs import this file and change only what differs. Select one with
`--config=configs/<name>.py` and override single fields with `--config.<group>.<field>=<value>`,
for example `jaxmani info --config=configs/bird.py --config.model.gf_dim=64`.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    """Returns the default configuration (the toy dataset with bird-sized networks)."""
    config = ml_collections.ConfigDict()
    config.seed = 0  # Root PRNG seed; every random draw of a run derives from it.

    config.data = ml_collections.ConfigDict()
    config.data.name = "toy_birds"  # TFDS dataset name: "toy_birds" or "cub_birds".
    config.data.data_dir = "data"  # Directory holding the TFDS datasets built by `jaxmani prepare`.
    config.data.image_size = 256  # Side of the square images fed to the networks (G outputs this).
    config.data.words_num = 18  # Caption length after padding/subsampling (TEXT.WORDS_NUM).
    config.data.builder_config = ""  # toy_birds "64"/"256", cub_birds "fcn_mask"; "" = default.
    config.data.workers = 0  # grain worker processes per host; 0 = decode in the main process.
    config.data.threads = 2  # grain reader threads per process (each makes whole batches).
    config.data.prefetch = 2  # Batches buffered ahead per process.

    config.model = ml_collections.ConfigDict()
    config.model.gf_dim = 32  # Generator base width (GAN.GF_DIM); init stage uses 16x this.
    config.model.df_dim = 64  # Discriminator base width (GAN.DF_DIM).
    config.model.z_dim = 100  # Noise vector length (GAN.Z_DIM).
    config.model.condition_dim = 100  # Conditioning-augmentation code length (GAN.CONDITION_DIM).
    config.model.embedding_dim = 256  # Text/image embedding width of the DAMSM encoders (nef).
    config.model.word_dim = 300  # Word-embedding width at the text encoder input (ninput).
    config.model.vocab_size = 5450  # Text encoder vocabulary size, '<end>' included (n_words).
    config.model.r_num = 2  # Residual blocks per generator stage (GAN.R_NUM).
    config.model.d_sharp_channel = False  # D takes a 4th sharp-region channel (seed option).

    # Places where the PyTorch baseline departs from a clean implementation and changes outputs
    # (BASELINE_SPEC §7, §9). All off here; configs/upstream_parity.py turns every one on.
    config.compat = ml_collections.ConfigDict()
    # Spatial attention at location q of sample b uses the padding mask of sample (b*H*W+q) mod B.
    config.compat.attention_mask_other_sample = False
    # Channel-attention softmax includes the padding words up to the batch's longest caption.
    config.compat.channel_attention_batch_padding = False
    # The seed generator skips the init-stage fc BatchNorm when the batch holds one sample.
    config.compat.skip_init_bn_at_batch_one = False
    # 17->32 nearest upsample indexes floor(i*float32(1/1.9)) (PyTorch >= 1.6), not floor(i*17/32).
    config.compat.nearest_scale_index = False
    # CA-Net samples its noise in eval mode too (clean: eval mode uses mu).
    config.compat.ca_noise_at_eval = False
    # BCE on sigmoid probabilities with logs clamped at -100 (clean: stable BCE on logits).
    config.compat.bce_log_clamp = False

    config.train = ml_collections.ConfigDict()
    config.train.batch_size = 10  # Global batch size across all devices and hosts.
    config.train.num_steps = 88_500  # Number of G steps (seed bird: 100 epochs of 885 batches).

    config.parallel = ml_collections.ConfigDict()
    config.parallel.mode = "jit"  # "jit" (global batch over a ('data',) mesh) or "pmap".

    config.bench = ml_collections.ConfigDict()
    config.bench.warmup = 2  # Untimed iterations before timing (compilation included there).
    config.bench.iters = 5  # Timed iterations; the median is reported.
    config.bench.input_batches = 100  # Batches timed by `jaxmani bench input`.
    return config
