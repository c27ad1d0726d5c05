#!/usr/bin/env bash
# One stage of the shipped model on a lent GPU machine: python3 with JAX and CUDA, no TensorFlow,
# no ffmpeg, no network. From the repository root, with device_data/ (python -m lab.device_data pack),
# .whl/ (the wheels of Keras 3.15.1, namex and optree for python3 there) and the stage's
# train.init_weights in place:
#     OUT=results lab/experiments/gpu_stage.sh EXPERIMENT [--minutes M]
# It unpacks the clips, trains lab/experiments/EXPERIMENT.yaml with lab/train_jax.py (further arguments go
# to it), and copies the run's files to $OUT, the weights in 15 MB parts (the lent machines hand
# back files of at most 16 MiB): `cat best.weights.h5.part* > best.weights.h5`. It copies them on
# any exit, a failed or terminated one too: the best epoch so far is worth a machine's minutes.
set -euo pipefail
experiment=$1
shift
run=1_checkpoint/$experiment

copy_out() {
    for name in log.csv best.json config.yaml; do
        if [ -f "$run/$name" ]; then cp "$run/$name" "$OUT"/; fi
    done
    if [ -f "$run/best.weights.h5" ]; then split -b 15000000 -d "$run/best.weights.h5" "$OUT"/best.weights.h5.part; fi
}
trap copy_out EXIT
trap 'exit 143' TERM
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site KERAS_BACKEND=jax PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -m lab.device_data unpack
python3 -m lab.train_jax --config "lab/experiments/$experiment.yaml" --workers 12 "$@"
