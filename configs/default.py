"""Every jaxmani configuration field, with the paper's bird values where they exist.

Experiment configs import this file and change only what differs. Select one with
`--config=configs/<name>.py` and override single fields with `--config.<group>.<field>=<value>`,
for example `jaxmani info --config=configs/bird.py --config.model.g.gf_dim=64`.

The defaults train the Lightweight baseline (no method of the paper switched on) on toy_birds at
64x64 with the small DAMSM image encoder; configs/bird.py is the CUB setup at 256x256.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    """Returns the default configuration (toy_birds at 64x64, bird-sized widths)."""
    config = ml_collections.ConfigDict()
    config.seed = 0  # Root PRNG seed; every random draw of a run derives from it.

    config.data = ml_collections.ConfigDict()
    config.data.name = "toy_birds"  # TFDS dataset name: "toy_birds" or "cub_birds".
    config.data.data_dir = "data"  # Directory holding the TFDS datasets built by `jaxmani prepare`.
    config.data.image_size = 64  # Side of the square images fed to the networks: 64, 128 or 256.
    config.data.words_num = 18  # Caption length after padding/subsampling (TEXT.WORDS_NUM).
    config.data.builder_config = ""  # toy_birds "64"/"256", cub_birds "fcn_mask"; "" = default.
    config.data.workers = 0  # grain worker processes per host; 0 = decode in the main process.
    config.data.threads = 2  # grain reader threads per process (each makes whole batches).
    config.data.prefetch = 2  # Batches buffered ahead per process.

    config.model = ml_collections.ConfigDict()
    config.model.embedding_dim = 256  # Text/image embedding width of the DAMSM encoders (nef).
    config.model.g = ml_collections.ConfigDict()
    config.model.g.gf_dim = 32  # Generator base width (GAN.GF_DIM); init stage uses 16x this.
    config.model.g.z_dim = 100  # Noise vector length (GAN.Z_DIM).
    config.model.g.condition_dim = 100  # Conditioning-augmentation code length (CONDITION_DIM).
    config.model.g.r_num = 2  # Residual blocks per generator stage (GAN.R_NUM).
    config.model.d = ml_collections.ConfigDict()
    config.model.d.df_dim = 64  # Discriminator base width (GAN.DF_DIM).
    # D takes the seed's sharp-region map as a 4th input channel (USE_SHARP_REGION_MASK).
    config.model.d.sharp_channel = False
    config.model.text = ml_collections.ConfigDict()
    config.model.text.vocab_size = 5450  # Vocabulary size, '<end>' included (n_words).
    config.model.text.word_dim = 300  # Word-embedding width at the LSTM input (ninput).
    config.model.text.dropout = 0.5  # Dropout on the word embeddings in DAMSM pretraining.
    config.model.image = ml_collections.ConfigDict()
    # DAMSM image encoder: "inception" (Inception-v3 trunk at 299, the baseline's) or "small" (a
    # few conv blocks with a region grid of image_size/8, for toy data).
    config.model.image.encoder = "small"
    config.model.image.width = 64  # Base width of the "small" encoder (unused by "inception").
    # How the "small" encoder pools its region features into the global code: "mean" or "max"
    # (unused by "inception", whose code is the trunk's average pool as in the baseline).
    config.model.image.pool = "mean"

    # Pretrained weights: jaxmani params files made by `jaxmani convert` or `jaxmani pretrain`.
    # "" means seeded random weights (fine for toy runs and tests; meaningless for real data).
    config.pretrained = ml_collections.ConfigDict()
    config.pretrained.text_encoder = ""  # DAMSM text encoder (`jaxmani pretrain` writes one).
    config.pretrained.image_encoder = ""  # DAMSM image encoder (`jaxmani pretrain` writes one).
    config.pretrained.vgg = ""  # VGG16 relu2_2 params file for the perceptual loss and G input.
    config.pretrained.fid_inception = ""  # FID Inception (pt_inception-2015-12-05) for FID.
    config.pretrained.inception = ""  # torchvision Inception-v3 (ImageNet) for the IS.

    # Places where the PyTorch baseline departs from a clean implementation and changes outputs
    # (BASELINE_SPEC §7, §9). All off here; the parity configs turn them on.
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

    config.loss = ml_collections.ConfigDict()
    config.loss.damsm = ml_collections.ConfigDict()
    config.loss.damsm.gamma1 = 4.0  # Word-to-region attention sharpness (SMOOTH.GAMMA1).
    config.loss.damsm.gamma2 = 5.0  # Word-relevance aggregation (SMOOTH.GAMMA2).
    config.loss.damsm.gamma3 = 10.0  # Similarity scale of the retrieval softmax (SMOOTH.GAMMA3).
    config.loss.g = ml_collections.ConfigDict()
    config.loss.g.adversarial_weight = 1.0  # Conditional + unconditional BCE against the new D.
    config.loss.g.word_weight = 5.0  # DAMSM word loss (SMOOTH.LAMBDA).
    config.loss.g.sentence_weight = 5.0  # DAMSM sentence loss (SMOOTH.LAMBDA).
    config.loss.g.perceptual_weight = 0.5  # VGG relu2_2 MSE between real and fake.
    config.loss.g.kl_weight = 1.0  # KL of the conditioning augmentation.
    config.loss.g.mask_weight = 0.0  # MAE-mask loss alpha (paper and seed: 25); 0 = off.
    config.loss.g.mask_source = "gt"  # M: "fcn" (precomputed), "gt" (toy), "hm", "hm_adaptive".
    config.loss.g.mask_threshold = 32.5  # HM threshold on the 0-255 scale (mask_source "hm").
    config.loss.g.nsl_weight = 0.0  # Naive Sharpness Loss alpha (paper: 1); 0 = off.
    config.loss.g.nsl_gamma = 0.1  # NSL tanh sensitivity gamma (paper: 0.1).
    config.loss.g.gm_mode = ""  # Gradient Manipulation: "" off, "region" (paper), "seed".
    config.loss.g.gm_k = 1.5  # GM gradient factor inside the sharp region (mode "region").
    # Paired-edit L1 (toy_birds only, not a method of the paper): G also edits the image with the
    # dataset's ground-truth edit caption and is pulled towards the ground-truth edit; 0 = off.
    config.loss.g.paired_edit_weight = 0.0
    # The same L1 averaged over only the pixels the ground-truth edit recolours, per image, so the
    # few edited pixels are not outweighed by the unchanged rest; needs paired_edit_weight > 0.
    config.loss.g.edited_region_weight = 0.0
    config.loss.d = ml_collections.ConfigDict()
    config.loss.d.sad_weight = 0.0  # SAD: weight of blurred reals labelled fake (seed: 1); 0 = off.
    config.loss.d.sad_filter = "box"  # SAD blur: "box" (per channel), "gaussian", "seed" (grey).
    config.loss.d.sad_kernel = 9  # SAD blur kernel (odd); the paper reports 5 and 9.
    config.loss.d.sad_kernel_max = 0  # > sad_kernel: kernel drawn per step from the odd sizes.
    config.loss.d.sad_sigma = 2.0  # Gaussian SAD blur sigma.

    config.optim = ml_collections.ConfigDict()
    for player in ("g", "d"):
        config.optim[player] = ml_collections.ConfigDict()
        config.optim[player].lr = 2e-4  # Adam learning rate (GENERATOR_LR / DISCRIMINATOR_LR).
        config.optim[player].b1 = 0.5  # Adam beta1.
        config.optim[player].b2 = 0.999  # Adam beta2.
        config.optim[player].eps = 1e-8  # Adam epsilon (added to the root of the second moment).
    config.optim.ema_decay = 0.999  # G-EMA: avg <- decay * avg + (1 - decay) * params.

    config.train = ml_collections.ConfigDict()
    config.train.batch_size = 10  # Global batch size across all devices and hosts.
    config.train.num_steps = 88_500  # Number of G steps (seed bird: 100 epochs of 885 batches).
    config.train.log_every = 50  # Steps between metric lines (JSON + TensorBoard).
    config.train.checkpoint_every = 1000  # Steps between checkpoints (the last step always saves).
    config.train.sample_every = 1000  # Steps between PNG sample grids (original | edit | mask).
    config.train.max_to_keep = 3  # Checkpoints kept in <workdir>/checkpoints.
    # Computation dtype of G and D: "float32", or "bfloat16" for mixed precision (parameters,
    # optimizer state, BatchNorm statistics, softmaxes, the frozen encoders and every loss stay
    # float32). Helps on GPU and TPU; XLA:CPU runs bfloat16 convolutions slower than float32.
    config.train.dtype = "float32"

    config.pretrain = ml_collections.ConfigDict()
    config.pretrain.batch_size = 44  # DAMSM batch size (cfg/DAMSM/bird.yml).
    config.pretrain.num_steps = 40_000  # DAMSM steps (200 epochs of ~200 batches at 44).
    config.pretrain.lr = 2e-3  # Initial Adam learning rate (ENCODER_LR).
    config.pretrain.lr_decay = 0.98  # LR factor per epoch while lr > lr_min.
    config.pretrain.lr_min = 2e-4  # The decay stops at this learning rate.
    config.pretrain.clip_norm = 0.25  # Gradient-norm clip of the text encoder (RNN_GRAD_CLIP).
    config.pretrain.log_every = 100  # Steps between metric lines.

    config.parallel = ml_collections.ConfigDict()
    config.parallel.mode = "jit"  # "jit": global batch over a ('data',) mesh; or "pmap".
    # Multi-process runs: "" = one process; "auto" = jax.distributed.initialize() detects the
    # cluster (SLURM, TPU pod slices, Open MPI); "host:port" = explicit coordinator, with
    # num_processes and process_id below.
    config.parallel.coordinator = ""
    config.parallel.num_processes = 1  # Processes in the run (coordinator "host:port" only).
    config.parallel.process_id = 0  # This process's index (coordinator "host:port" only).

    config.bench = ml_collections.ConfigDict()
    config.bench.warmup = 2  # Untimed iterations before timing (compilation included there).
    config.bench.iters = 5  # Timed iterations; the median is reported.
    config.bench.input_batches = 100  # Batches timed by `jaxmani bench input`.
    config.bench.profile_rows = 25  # Slowest XLA ops listed by `jaxmani bench profile`.

    config.evaluate = ml_collections.ConfigDict()
    config.evaluate.batch_size = 10  # Global eval batch (G-EMA runs in eval mode: no effect).
    config.evaluate.seed = 0  # Seeds G's noise z per batch and the R-precision draws.
    config.evaluate.fid_protocol = "pytorch_fid"  # Or "seed_train" (how the paper's FID ran).
    config.evaluate.r_precision_repeats = 10  # R-precision draws of 99 distractors (AttnGAN: 10).
    config.evaluate.grid_rows = 8  # Test images shown in the edit and attention figures.
    config.evaluate.sweep_images = 100  # toy_birds: test images the caption sweep edits.
    return config
