#!/usr/bin/env bash
# Multi-node GPU training under SLURM: one process per node, every GPU of the node in it.
#   sbatch --nodes=4 --gpus-per-node=8 launch/slurm_gpu.sh configs/bird_combined.py runs/bird
# jax.distributed.initialize() ("auto") reads the coordinator, process count and process id from
# SLURM's environment; the global batch (config.train.batch_size) is split over all GPUs, and
# each process reads its own shard of the data. --workdir must be on a filesystem every node
# sees (checkpoints are written by all processes together). Add --config.parallel.mode=pmap
# for jax.pmap over each node's GPUs instead of jit over the global mesh (same step).
#SBATCH --ntasks-per-node=1
#SBATCH --exclusive
set -euo pipefail
config=${1:?usage: sbatch launch/slurm_gpu.sh CONFIG WORKDIR [overrides...]}
workdir=${2:?usage: sbatch launch/slurm_gpu.sh CONFIG WORKDIR [overrides...]}
shift 2
srun jaxmani train --config="$config" --workdir="$workdir" \
  --config.parallel.coordinator=auto "$@"
