#!/usr/bin/env bash
# A TPU pod slice: the same command on every worker; jax.distributed.initialize() ("auto")
# finds the slice's topology.
#   gcloud compute tpus tpu-vm ssh NAME --zone=ZONE --worker=all \
#     --command="cd jaxmani && launch/tpu_pod.sh configs/bird_combined.py gs://BUCKET/runs/bird"
# Every worker reads its own shard of the data, which must exist at config.data.data_dir on
# each worker (or on shared storage); --workdir is shared storage (a GCS path works with orbax).
# Add --config.parallel.mode=pmap for jax.pmap over each worker's chips instead of jit.
set -euo pipefail
config=${1:?usage: launch/tpu_pod.sh CONFIG WORKDIR [overrides...]}
workdir=${2:?usage: launch/tpu_pod.sh CONFIG WORKDIR [overrides...]}
shift 2
jaxmani train --config="$config" --workdir="$workdir" --config.parallel.coordinator=auto "$@"
