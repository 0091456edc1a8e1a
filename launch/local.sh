#!/usr/bin/env bash
# One machine, every local device (CPU cores, or all GPUs of the host): DAMSM pretraining, then
# GAN training, for one config.
#   launch/local.sh configs/toy_combined.py runs/toy_combined [--config.train.num_steps=500 ...]
# The toy configs read their DAMSM encoders from runs/toy_damsm; the first run makes them.
# --config.parallel.mode=pmap runs the step under jax.pmap instead of jit over a device mesh.
set -euo pipefail
config=${1:?usage: launch/local.sh CONFIG WORKDIR [overrides...]}
workdir=${2:?usage: launch/local.sh CONFIG WORKDIR [overrides...]}
shift 2
jaxmani prepare --config="$config" "$@"
damsm=runs/toy_damsm
if [[ ! -f "$damsm/text_encoder.msgpack" ]]; then
  jaxmani pretrain --config="$config" --workdir="$damsm" "$@"
fi
jaxmani train --config="$config" --workdir="$workdir" "$@"
