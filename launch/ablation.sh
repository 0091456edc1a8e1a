#!/usr/bin/env bash
# The paper's reproduction study on toy_birds 64: every row of Tables I-III (configs/toy_*.py)
# trained and evaluated, the key comparison (baseline vs combined) over three seeds, then
# `jaxmani report` with the paper's tables beside ours.
#   launch/ablation.sh [OUT]          (default OUT: runs/ablation)
# Environment: STEPS (GAN steps per run, default 120), PRETRAIN_STEPS (DAMSM steps, default 1500),
# SEEDS (seeds of the key comparison, default "0 1 2"), EMA_DECAY (G-EMA decay, default 0.99),
# IMAGE_POOL (the small DAMSM image encoder's code pool, default max; the study of 2026-12-02
# ran with mean), ROWS (the Table rows trained at seed 0, default the six toy_* method configs;
# empty for none), KEY (the key comparison's two configs, default "toy_baseline toy_combined").
# The comparison at the demo's recipe, where the edits follow the captions (about 70 minutes):
#   ROWS= KEY="toy_demo_baseline toy_demo" STEPS=1200 PRETRAIN_STEPS=600 launch/ablation.sh OUT
# Sized for at most about 90 minutes on 2 CPU cores: 12 runs of STEPS steps, each with its
# evaluation, after the DAMSM pretraining (measured 2026-12-07 with avx512f: 35 minutes in all;
# on 2026-12-02 the 12 runs alone took 74 minutes on an older avx2-only CPU). G-EMA decays by
# EMA_DECAY: the baseline's 0.999 would leave 89% of the initial weights in G-EMA after 120 steps
# (0.99: 30%).
# A rerun skips finished runs and resumes interrupted ones.
set -euo pipefail
out=${1:-runs/ablation}
steps=${STEPS:-120}
pretrain_steps=${PRETRAIN_STEPS:-1500}
seeds=${SEEDS:-0 1 2}
ema_decay=${EMA_DECAY:-0.99}
rows=${ROWS-toy_hm toy_mask toy_nsl toy_gm toy_sad5 toy_sad9}
read -r -a key <<<"${KEY:-toy_baseline toy_combined}"
data=(--config.data.data_dir="$out/data")
pool=(--config.model.image.pool="${IMAGE_POOL:-max}")
export JAX_COMPILATION_CACHE_DIR=${JAX_COMPILATION_CACHE_DIR:-$out/xla_cache}

jaxmani prepare --config=toy_baseline "${data[@]}"
if [[ ! -f "$out/damsm/image_encoder.msgpack" ]]; then
  jaxmani pretrain --config=toy_baseline "${data[@]}" "${pool[@]}" \
    --config.pretrain.num_steps="$pretrain_steps" --workdir="$out/damsm"
fi

run() {  # run CONFIG SEED: train (or resume) and evaluate one workdir.
  local workdir="$out/$1-seed$2"
  jaxmani train --config="$1" "${data[@]}" "${pool[@]}" --config.seed="$2" \
    --config.pretrained.text_encoder="$out/damsm/text_encoder.msgpack" \
    --config.pretrained.image_encoder="$out/damsm/image_encoder.msgpack" \
    --config.train.num_steps="$steps" --config.train.checkpoint_every="$steps" \
    --config.train.sample_every="$steps" --config.optim.ema_decay="$ema_decay" --workdir="$workdir"
  if [[ ! -f "$workdir/eval/$steps/metrics.json" ]]; then
    jaxmani evaluate --workdir="$workdir"
  fi
  workdirs+=("$workdir")
}

workdirs=()
for config in $rows; do
  run "$config" 0
done
for seed in $seeds; do
  for config in "${key[@]}"; do
    run "$config" "$seed"
  done
done
jaxmani report "${workdirs[@]}" --out="$out/report.md"
