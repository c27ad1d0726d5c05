"""Enhancement throughput and memory at video sizes, on whichever Keras backend runs it (TensorFlow,
or JAX on a GPU machine without TensorFlow).

    python -m lab.benchmark_enhance [--sizes 1080p 4k] [--precisions float32 mixed_bfloat16] [--frames 64]
                                [--runs 2] [--json PATH] [--quick]

For each output size and precision, in a fresh process each (so that one's memory is not the next
one's), with the shipped weights:
- end to end: a dark packed clip of `--frames` frames read from its npy file, normalised, tiled,
  enhanced, blended, anchored and encoded to H.264 by test.py's enhance_clip, in frames a second;
- the model alone on the same network calls (inference.network_calls: every view of every window
  in time times every tile in space), in frames a second, and end to end over it (`ratio`: what
  reading, blending, anchoring and encoding add when they do not overlap the model);
- the peak resident memory of the process, and the accelerator's peak memory where the backend
  reports it (JAX's memory_stats, TensorFlow's get_memory_info).
The model is compiled: predict_on_batch is a jax.jit on JAX (XLA) and a tf.function on TensorFlow.
--quick runs a tiny model on tiny frames (for CI: it checks that the benchmark runs).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cli  # before Keras and TensorFlow: config.py, which it imports, makes TensorFlow load quietly
import keras
import numpy as np

import checkpoints
import config
import data
import enhance
import network
import synthesis
from atomic import atomic_output
from inference import TiledEnhancer, network_calls

SIZES = {"1080p": (1080, 1920), "4k": (2160, 3840), "quick": (48, 64)}  # output height, width
QUICK_MODEL = ["model.depth=2", "model.base_channels=4", "test.tile_frames=8", "test.tile_size=16",
               "test.overlap_size=4", "test.overlap_frames=2"]


def make_clip(path, frames, height, width):
    """A dark packed clip of a moving still at `height` x `width` output pixels, with its sidecar."""
    import skimage.data
    synth = {**config.DEFAULTS["synthesis"], "frames": frames, "height": height, "width": width}
    gt_rgb, fps = synthesis.still_clip(skimage.data.astronaut(), "benchmark", synth)
    rng = synthesis.clip_rng(0, "benchmark")
    params = synthesis.draw_camera_params(rng, synth)
    np.save(path, synthesis.synthesize(gt_rgb, params, rng))
    data.sidecar_path(path).write_text(json.dumps(synthesis.sidecar(params, fps, "benchmark")))


def accelerator_peak_gib():
    """The accelerator's peak memory in use so far, GiB, or None where there is none to ask."""
    if keras.backend.backend() == "jax":
        import jax
        peaks = [(device.memory_stats() or {}).get("peak_bytes_in_use") for device in jax.devices() if device.platform == "gpu"]
        peaks = [peak for peak in peaks if peak is not None]
        return max(peaks) / 2**30 if peaks else None
    import tensorflow as tf
    if not tf.config.list_physical_devices("GPU"):
        return None
    return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**30


def peak_resident_gib():
    """This process's peak resident memory (VmHWM), GiB."""
    status = Path("/proc/self/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))) / 2**20


def measure(clip_path, frames, precision, runs, quick):
    """The figures of one size and precision, in this process."""
    if quick:
        cfg = config.load_config(overrides=[f"model.precision={precision}", *QUICK_MODEL])
        model = network.build_unet(cfg["model"])
    else:  # the shipped model as test.py loads it: its config.yaml's model and input settings
        cfg, weights = checkpoints.configure(["experiment=shipped", f"model.precision={precision}"])
        model = checkpoints.load_generator(cfg, weights)
    enhancer = TiledEnhancer(model, cfg["test"])
    clip = data.open_clip(clip_path, None, cfg["data"])
    output = Path(clip_path).with_name("out.mp4")
    end_to_end = best_seconds(lambda: enhance.enhance_clip(clip, enhancer, cfg, output), runs)
    _, height, width, _ = clip.packed_raw.shape
    calls, shape = network_calls(frames, height, width, cfg["test"], network.size_multiple(model),
                                 model.dtype_policy.compute_dtype)
    window = np.random.default_rng(0).random((1, *shape, 4), np.float32)
    model_alone = calls * best_seconds(lambda: model.predict_on_batch(window), runs)
    return {"fps": frames / end_to_end, "model_fps": frames / model_alone, "ratio": end_to_end / model_alone,
            "network_calls": calls, "call_shape": list(shape), "peak_resident_gib": peak_resident_gib(),
            "accelerator_peak_gib": accelerator_peak_gib()}


def best_seconds(run, runs):
    """The best of `runs` timed runs after one warm-up (the compilation): a limit, as other load only lowers it."""
    run()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def in_fresh_process(clip_path, frames, precision, runs, quick):
    """measure() in a child process of this script: its own peak memory, its own compilation."""
    command = [sys.executable, "-m", "lab.benchmark_enhance", "--child", str(clip_path), str(frames), precision,
               str(runs), str(int(quick))]
    done = subprocess.run(command, cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"benchmark child for {precision} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def machine():
    return {"backend": keras.backend.backend(), "machine": network.machine(), "cores": os.cpu_count(),
            "keras": keras.__version__}


def report(results):
    lines = [f"{results['machine']} ({results['backend']}): frames a second, end to end and the model alone",
             f"{'size':<8} {'precision':<16} {'end to end':>10} {'model':>8} {'ratio':>6} {'peak RAM GiB':>12} {'accel GiB':>9}"]
    for row in results["rows"]:
        accel = "-" if row["accelerator_peak_gib"] is None else f"{row['accelerator_peak_gib']:.2f}"
        lines.append(f"{row['size']:<8} {row['precision']:<16} {row['fps']:10.2f} {row['model_fps']:8.2f} "
                     f"{row['ratio']:6.2f} {row['peak_resident_gib']:12.2f} {accel:>9}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", choices=[s for s in SIZES if s != "quick"], default=["1080p", "4k"])
    parser.add_argument("--precisions", nargs="+", choices=["float32", "mixed_bfloat16"],
                        default=["float32", "mixed_bfloat16"])
    parser.add_argument("--frames", type=int, default=64, help="frames of the clip enhanced")
    parser.add_argument("--runs", type=int, default=2, help="timed runs per figure, after a warm-up")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--quick", action="store_true", help="a tiny model on tiny frames: checks the benchmark runs")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        clip_path, frames, precision, runs, quick = args.child
        return print(json.dumps(measure(clip_path, int(frames), precision, int(runs), quick == "1")))
    sizes = ["quick"] if args.quick else args.sizes
    frames = 6 if args.quick else args.frames
    results = {**machine(), "frames": frames, "rows": []}
    with tempfile.TemporaryDirectory(prefix="benchmark_enhance_") as root:
        for size in sizes:
            clip_path = Path(root) / f"{size}.npy"
            make_clip(clip_path, frames, *SIZES[size])
            for precision in args.precisions:
                row = in_fresh_process(clip_path, frames, precision, args.runs, args.quick)
                results["rows"].append({"size": size, "precision": precision, **row})
                print(f"{size} {precision}: {row['fps']:.2f} frames/s end to end, {row['model_fps']:.2f} the model alone",
                      flush=True)
    print(report(results))
    if args.json:
        with atomic_output(args.json) as tmp:
            tmp.write_text(json.dumps(results, indent=1))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    cli.run_script(main)
