#!/usr/bin/env bash
# One stage of the shipped model on a lent GPU machine: python3 with JAX and CUDA, no TensorFlow,
# no ffmpeg, no network. From the repository root, with device_data/ (python device_data.py pack),
# .whl/ (the wheels of Keras 3.15.1, namex and optree for python3 there) and the stage's
# train.init_weights in place:
#     OUT=results experiments/gpu_stage.sh EXPERIMENT [--minutes M]
# It unpacks the clips, trains experiments/EXPERIMENT.yaml with train_jax.py (further arguments go
# to it), and copies the run's files to $OUT, the weights in 15 MB parts (the lent machines hand
# back files of at most 16 MiB): `cat best.weights.h5.part* > best.weights.h5`.
set -euo pipefail
experiment=$1
shift
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site KERAS_BACKEND=jax PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 device_data.py unpack
python3 train_jax.py --config "experiments/$experiment.yaml" --workers 12 "$@"

run=1_checkpoint/$experiment
cp $run/log.csv $run/best.json $run/config.yaml "$OUT"/
split -b 15000000 -d $run/best.weights.h5 "$OUT"/best.weights.h5.part
