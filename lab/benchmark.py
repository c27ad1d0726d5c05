"""Speed and memory of training and inference, each measured against this machine's own limit.

    python -m lab.benchmark [--json PATH] [--quick] [--runs N]

1. roofline: tf.matmul on 4096x4096, float32 and bfloat16, GFLOP/s, the best of at least 10 runs;
2. training compute: one step (forward, backward, Adam) at the `smoid` crop, 16x128x128 packed,
   depth 3, 32 channels, fed from memory; GFLOP/s from network.forward_flops (x3 for a training
   step), against this machine's own float32 and bfloat16 matmul rates; and, in the precision
   `auto` picks, with the original's zero time padding instead of replicated end frames
   (`training_compute_zero_time_padding_ratio`): what the replication costs; and, where oneDNN
   runs them (a CPU), the step's convolutions alone by oneDNN's own timings, one op at a time
   (`training_conv_*`): GFLOP/s forward, backward to the data and to the weights, and their ratio
   to the matmul rate, which the step would reach if nothing but its convolutions took time;
3. training end to end: the same step fed by the real tf.data pipeline from npy files on disk,
   with augmentation, against (2);
4. inference end to end: a 200-frame clip of 340x620 output, from the npy file through
   normalisation, tiling, blending, the colour anchor and H.264 encoding, in frames per second,
   against the model alone on the same network calls (the windows and tiles the tiling cuts),
   float32 and mixed_bfloat16, with the shipped weights (a trained network's output, as users
   encode it); and the model's work over the clip's own voxels (`inference_model_work`: the
   mirrored ends and the windows' overlap make 240 frames of work of 200);
5. memory: peak resident memory of inference on 200 and on 2,000 frames, and of smoid training,
   each in a fresh process. The tiling gives a longer clip longer windows (at most
   test.tile_frames: 60 frames on 200, 71 on 2,000), and the peak follows the window, so the
   2,000 frames are measured again at the 200-frame clip's window: whether memory grows with the
   clip itself;
6. burst: peak resident memory and time per frame of `test.py --input FOLDER` on synthetic DNG
   bursts of 24 megapixels (6000x4000), 8, 16 and 32 frames, each in a fresh process, with the
   shipped model and every default: what a camera's full-size burst costs;
7. with --compare-torch (PyTorch installed; never a requirement): the same U-Net's training step in
   PyTorch, float32 and bf16 autocast, each in its faster memory layout, timed by a fresh process of
   this run, against the step of the precision `auto` picks here (needs the training section).

Every time is the median of --runs timed runs after a warm-up (the roofline's: the best), taken
in the same process as the reference it is divided by. --quick runs everything on tiny sizes (for
CI: it checks that the benchmark works and writes well-formed JSON, not how fast anything is).
"""
import argparse
import importlib.util
import json
import os
import platform
import re
import runpy
import subprocess
import sys
import statistics
import tempfile
import timeit
from pathlib import Path

import cli  # before TensorFlow: config.py, which it imports, makes TensorFlow load without its start-up lines
import numpy as np
import tensorflow as tf

import checkpoints
import config
import crops
import data
import enhance
from lab import figures
import generate_file_list
import losses
import network
import synthesis
import train
from atomic import atomic_output
from inference import TiledEnhancer, network_calls, time_plan

ROOT = Path(__file__).resolve().parents[1]  # the project's folder, where `python -m lab.benchmark` runs

SIZES = {  # full: the sizes; quick: tiny, for CI
    "full": {"matmul": 4096, "crop": (16, 128, 128), "clip": (200, 170, 310), "long_frames": 2000,
             "dataset": (4, 48, 288, 512), "model": ["preset=smoid"], "burst": ((8, 16, 32), 4000, 6000)},
    "quick": {"matmul": 256, "crop": (4, 16, 16), "clip": (12, 20, 28), "long_frames": 36,
              "dataset": (3, 8, 40, 48), "model": ["preset=smoid", "model.depth=2", "model.base_channels=4",
                                                   "test.tile_frames=8", "test.tile_size=16", "test.overlap_size=4",
                                                   "test.overlap_frames=2"],
              "burst": ((32,), 32, 48)},  # the one with a target
}
SECTIONS = ("roofline", "training", "inference", "memory", "burst")
TARGETS = {  # figure: (comparison, bound)
    "training_compute_f32_ratio": ("min", 0.90),
    "training_compute_bf16_ratio": ("min", 0.90),
    "training_end_to_end_ratio": ("max", 1.05),
    "inference_f32_ratio": ("max", 1.20),
    "inference_bf16_ratio": ("max", 1.20),
    "inference_memory_same_window_ratio": ("max", 1.10),
    "training_peak_memory_gib": ("max", 4.0),
    "burst_32_peak_memory_gib": ("max", 6.0),
    "torch_best_over_auto_step": ("min", 1.0),
}


POLICIES = {"f32": "float32", "bf16": "mixed_bfloat16"}


def auto_precision(size):
    """The POLICIES key of the precision that `auto` picks on this machine."""
    return {policy: name for name, policy in POLICIES.items()}[network.dtype_policy(bench_config(size)["model"])]


def timed_seconds(run, runs, warmup=1):
    """Wall times of `runs` calls of `run()`, after `warmup` untimed ones."""
    timeit.repeat(run, number=1, repeat=warmup)
    return timeit.repeat(run, number=1, repeat=runs)


def median_seconds(run, runs, warmup=1):
    return statistics.median(timed_seconds(run, runs, warmup))


ROOFLINE_RUNS = 10  # at least


def matmul_gflops(n, dtype, runs):
    """The machine's matmul rate: the best of its runs, not the median, since it is a limit and
    other load only ever slows it (on a shared 2-core machine, medians of 5 moved by 9 % between
    runs of this command, where the training step's moved by 4 %)."""
    a = tf.cast(tf.random.normal((n, n)), dtype)
    b = tf.cast(tf.random.normal((n, n)), dtype)
    matmul = tf.function(lambda: tf.matmul(a, b))
    return 2 * n**3 / min(timed_seconds(lambda: matmul().numpy(), max(runs, ROOFLINE_RUNS))) / 1e9


def bench_config(size, *extra, root=None):
    frames, height, width = SIZES[size]["crop"]
    folders = [] if root is None else [f"data.input_dir={root}/in", f"data.gt_dir={root}/gt", f"data.lists_dir={root}"]
    return config.load_config(overrides=SIZES[size]["model"] + folders + [
        f"train.crop_frames={frames}", f"train.crop_size={height}", *extra])


def make_dataset(root, size):
    """Training clips on disk for the end-to-end step: moved scikit-image stills, synthesised."""
    import skimage.data
    count, frames, height, width = SIZES[size]["dataset"]
    cfg = bench_config(size, f"synthesis.frames={frames}", f"synthesis.height={height}", f"synthesis.width={width}",
                       root=root)
    stills = [skimage.data.astronaut, skimage.data.coffee, skimage.data.chelsea, skimage.data.rocket][:count]
    synthesis.synthesize_sources([(f.__name__, "benchmark", lambda s, f=f: synthesis.still_clip(f(), f.__name__, s))
                                  for f in stills], cfg)
    data_cfg = cfg["data"]
    generate_file_list.write_lists(generate_file_list.find_pairs(data_cfg), data_cfg)
    return data.open_list(Path(root) / "file_list", data_cfg) + data.open_list(Path(root) / "valid_list", data_cfg)


def training_step(cfg, batches):
    """One compiled training step of the configured model, fed from `batches` (an iterator)."""
    model = train.build_enhancer(cfg, losses.make_loss(cfg["loss"]), steps_per_epoch=1000)
    model.make_train_function()
    return lambda: float(model.train_function(batches)["loss"])


def training_seconds(cfg, batches, runs):
    """Median seconds of one compiled training step."""
    return median_seconds(training_step(cfg, batches), runs, warmup=2)


def batches_from_memory(size):
    """The same random crop and ground truth, again and again: the step without its input pipeline."""
    frames, height, width = SIZES[size]["crop"]
    batch = (tf.random.uniform((1, frames, height, width, 4)), tf.random.uniform((1, frames, 2 * height, 2 * width, 3)))
    return iter(tf.data.Dataset.from_tensors(batch).repeat())


# oneDNN's verbose record of one executed convolution: its direction, its shape, its milliseconds.
ONEDNN_CONV = re.compile(r"^onednn_verbose,.*,exec,cpu,convolution,[^,]*,(\w+),.*?"
                         r"mb(\d+)_ic(\d+)oc(\d+)_(?:id\d+od(\d+)kd(\d+)\D.*?)?ih\d+oh(\d+)kh(\d+)\D.*?"
                         r"iw\d+ow(\d+)kw(\d+)\D.*,([\d.]+)$")


def onednn_convolutions(lines, steps):
    """{direction: (seconds, GFLOP) per step} of the convolutions in oneDNN's verbose output of
    `steps` training steps. Every tap counts, as in forward_flops, padded ones included."""
    totals = {}
    for line in lines:
        match = ONEDNN_CONV.match(line)
        if match:
            direction, *shape, milliseconds = match.groups()
            mb, ic, oc, od, kd, oh, kh, ow, kw = (int(n) if n else 1 for n in shape)
            seconds, gflop = totals.get(direction, (0.0, 0.0))
            totals[direction] = (seconds + float(milliseconds) / 1e3 / steps,
                                 gflop + 2 * mb * ic * oc * od * kd * oh * kh * ow * kw / 1e9 / steps)
    return totals


def bench_convolutions(size, runs, limit):
    """The training step's convolutions alone, from oneDNN's own timings (ONEDNN_VERBOSE, in a
    child process): GFLOP/s per direction, and their ratio to the matmul rate, which the step
    would reach if nothing but its convolutions took time. Empty where oneDNN runs no
    convolutions (a GPU)."""
    steps = runs + 2
    done = subprocess.run([sys.executable, "-m", "lab.benchmark", "--child", size, "onednn", str(steps)], cwd=ROOT,
                          capture_output=True, text=True, env={**os.environ, "ONEDNN_VERBOSE": "1"})
    if done.returncode != 0:
        raise RuntimeError(f"benchmark child (oneDNN) failed:\n{done.stderr[-3000:]}")
    totals = onednn_convolutions(done.stdout.splitlines(), steps)
    if not totals:
        return {}
    results = {f"training_conv_{direction}_gflops": gflop / seconds for direction, (seconds, gflop) in totals.items()}
    seconds, gflop = (sum(values) for values in zip(*totals.values()))
    results["training_conv_s"] = seconds
    results["training_conv_ratio"] = gflop / seconds / limit
    return results


def bench_training(size, runs, roofline, root):
    frames, height, width = SIZES[size]["crop"]
    flops = 3 * network.forward_flops(bench_config(size)["model"], frames, height, width)
    from_memory = batches_from_memory(size)
    results = {"training_step_gflop": flops / 1e9}
    for precision, limit in (("f32", roofline["matmul_f32_gflops"]), ("bf16", roofline["matmul_bf16_gflops"])):
        cfg = bench_config(size, f"model.precision={POLICIES[precision]}")
        seconds = training_seconds(cfg, from_memory, runs)
        results[f"training_compute_{precision}_s"] = seconds
        results[f"training_compute_{precision}_gflops"] = flops / seconds / 1e9
        results[f"training_compute_{precision}_ratio"] = flops / seconds / 1e9 / limit
    chosen = auto_precision(size)
    # What the replicated time padding costs: the same step with the original's zero padding.
    zero_padding = training_seconds(bench_config(size, "model.time_padding=zeros"), from_memory, runs)
    results["training_compute_zero_time_padding_ratio"] = (
        flops / zero_padding / 1e9 / roofline[f"matmul_{chosen}_gflops"])
    clips = make_dataset(root, size)
    cfg = bench_config(size, root=root)
    plan = crops.SamplePlan(clips, cfg["train"], cfg["seed"])
    from_disk = iter(train.training_dataset(clips, plan, cfg["train"], cfg["test"]["mirror_frames"]).repeat())
    results["training_end_to_end_s"] = training_seconds(cfg, from_disk, runs)  # precision: auto
    results["training_end_to_end_ratio"] = results["training_end_to_end_s"] / results[f"training_compute_{chosen}_s"]
    results.update(bench_convolutions(size, runs, roofline[f"matmul_{chosen}_gflops"]))
    return results


def torch_unet(model_cfg):
    """network.build_unet's plain U-Net in PyTorch (channels first): the same convolutions, time
    padding by replication, 2x2 pooling and up-sampling per frame, head and depth-to-space."""
    import torch
    from torch import nn
    from torch.nn import functional

    def conv_pair(channels_in, channels):
        return nn.ModuleList([nn.Conv3d(channels_in, channels, 3), nn.Conv3d(channels, channels, 3)])

    def run_pair(pair, x):
        for conv in pair:
            x = functional.pad(functional.pad(x, (0, 0, 0, 0, 1, 1), mode="replicate"), (1, 1, 1, 1))
            x = functional.leaky_relu(conv(x), config.LEAKY_SLOPE)
        return x

    class UNet(nn.Module):
        def __init__(self, depth, base):
            super().__init__()
            self.down = nn.ModuleList([conv_pair(4 if level == 0 else base * 2 ** (level - 1), base * 2**level)
                                       for level in range(depth + 1)])
            self.up = nn.ModuleList([nn.ConvTranspose3d(base * 2 ** (level + 1), base * 2**level, (1, 2, 2),
                                                        stride=(1, 2, 2), bias=False) for level in range(depth)])
            self.dec = nn.ModuleList([conv_pair(base * 2 ** (level + 1), base * 2**level) for level in range(depth)])
            self.head = nn.Conv3d(base, 12, 1)

        def forward(self, x):
            skips = []
            for level, pair in enumerate(self.down):
                x = run_pair(pair, x)
                if level < len(self.up):
                    skips.append(x)
                    x = functional.max_pool3d(x, (1, 2, 2), ceil_mode=True)
            for level in reversed(range(len(self.up))):
                skip = skips[level]
                x = self.up[level](x)[..., :skip.shape[3], :skip.shape[4]]
                x = run_pair(self.dec[level], torch.cat([x, skip], dim=1))
            x = self.head(x)  # (B, 12, T, h, w) -> (B * T, 12, h, w) -> depth to space
            batch, channels, frames, height, width = x.shape
            x = x.transpose(1, 2).reshape(batch * frames, channels, height, width)
            return functional.pixel_shuffle(x, 2)

    return UNet(model_cfg["depth"], model_cfg["base_channels"])


def bench_torch(size, runs, results):
    """PyTorch's step times, measured by a fresh process of this run, one after the other on the same
    machine: a CUDA build of PyTorch 2.14 pulls in Triton, whose import crashed (segmentation fault)
    in a process where TensorFlow 2.21 had run."""
    done = subprocess.run([sys.executable, "-m", "lab.benchmark", "--child", size, "torch", str(runs)], cwd=ROOT,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"benchmark child for PyTorch failed:\n{done.stderr[-3000:]}")
    torch_results = json.loads(done.stdout.strip().splitlines()[-1])
    best = min(torch_results["torch_f32_s"], torch_results["torch_bf16_s"])
    return {**torch_results, "torch_best_over_auto_step": best / results[f"training_compute_{auto_precision(size)}_s"]}


def torch_step_seconds(size, runs):
    """PyTorch's training step (forward, L1, backward, Adam) of the same U-Net at the same crop, in
    float32 and in bf16 autocast, each in the faster of its two memory layouts."""
    import torch
    torch.set_num_threads(os.cpu_count())
    frames, height, width = SIZES[size]["crop"]
    model_cfg = bench_config(size)["model"]
    seconds = {}
    for precision, autocast in (("f32", False), ("bf16", True)):
        for layout in (torch.contiguous_format, torch.channels_last_3d):
            model = torch_unet(model_cfg).to(memory_format=layout)
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
            packed = torch.rand(1, 4, frames, height, width).to(memory_format=layout)
            gt_rgb = torch.rand(frames, 3, 2 * height, 2 * width)

            def step():
                optimizer.zero_grad()
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                    loss = torch.mean(torch.abs(model(packed).float() - gt_rgb))
                loss.backward()
                optimizer.step()

            layout_seconds = median_seconds(step, runs, warmup=2)
            seconds[precision] = min(seconds.get(precision, layout_seconds), layout_seconds)
    return {"torch_f32_s": seconds["f32"], "torch_bf16_s": seconds["bf16"], "torch_version": torch.__version__}


def make_clip(path, frames, height, width):
    """A dark packed clip of a moving still, with its sidecar, at the benchmark's size."""
    import skimage.data
    synth = {**config.DEFAULTS["synthesis"], "frames": frames, "height": 2 * height, "width": 2 * width}
    gt_rgb, fps = synthesis.still_clip(skimage.data.astronaut(), "benchmark", synth)
    rng = synthesis.clip_rng(0, "benchmark")
    params = synthesis.draw_camera_params(rng, synth)
    np.save(path, synthesis.synthesize(gt_rgb, params, rng))
    data.sidecar_path(path).write_text(json.dumps(synthesis.sidecar(params, fps, "benchmark")))


def repeat_clip(source, path, times):
    """A clip `times` as long, written frame block by frame block (never whole in memory)."""
    clip = np.load(source, mmap_mode="r")
    out = np.lib.format.open_memmap(path, "w+", np.uint16, (len(clip) * times, *clip.shape[1:]))
    for i in range(times):
        out[i * len(clip):(i + 1) * len(clip)] = clip
    out.flush()
    data.sidecar_path(path).write_text(data.sidecar_path(source).read_text())


def enhance_file(cfg, clip_path, output, size):
    """The whole inference path of test.py for one clip without ground truth. At full size with the
    shipped weights (the same network): an untrained network's output is noise, on which H.264 spends
    far more CPU time and bytes than on a trained one's."""
    model = network.build_unet(cfg["model"])
    if size == "full":
        model.load_weights(checkpoints.SHIPPED)
    enhancer = TiledEnhancer(model, cfg["test"])
    return lambda: enhance.enhance_clip(data.open_clip(clip_path, None, cfg["data"]), enhancer, cfg, output)


def bench_inference(size, runs, root):
    frames, height, width = SIZES[size]["clip"]
    clip_path = Path(root) / "clip.npy"
    results = {}
    for precision in ("f32", "bf16"):
        cfg = bench_config(size, f"model.precision={POLICIES[precision]}")
        seconds = median_seconds(enhance_file(cfg, clip_path, Path(root) / "out.mp4", size), runs)
        # The model alone, on the very calls the tiling makes: what the pipeline adds is the rest.
        unet = network.build_unet(cfg["model"])
        model = tf.function(lambda x: unet(x, training=False))
        calls, shape = network_calls(frames, height, width, cfg["test"], network.size_multiple(unet),
                                     unet.dtype_policy.compute_dtype)
        window = tf.random.uniform((1, *shape, 4))
        model_seconds = calls * median_seconds(lambda: model(window).numpy(), runs)
        results["inference_model_work"] = calls * int(np.prod(shape)) / (frames * height * width)
        results[f"inference_{precision}_fps"] = frames / seconds
        results[f"inference_{precision}_model_fps"] = frames / model_seconds
        results[f"inference_{precision}_ratio"] = seconds / model_seconds
    return results


def peak_memory_gib(*child_args):
    """Peak resident memory of a fresh process running `lab/benchmark.py --child ...`."""
    done = subprocess.run([sys.executable, "-m", "lab.benchmark", "--child", *child_args], cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"benchmark child {child_args} failed:\n{done.stderr[-3000:]}")
    return float(done.stdout.strip().splitlines()[-1]) / 2**20  # kB -> GiB


def child(args):
    """Run one memory measurement and print this process's peak resident memory (kB); or, for
    `torch`, print PyTorch's step times as JSON; or, for `onednn`, run training steps (precision:
    auto) for oneDNN's verbose output."""
    size, kind, *paths = args.child
    if kind == "torch":
        return print(json.dumps(torch_step_seconds(size, int(paths[0]))))
    if kind == "onednn":  # STEPS
        # One op at a time: side by side, a layer's two backward convolutions share the cores and
        # each would read slower than it runs.
        tf.config.threading.set_inter_op_parallelism_threads(1)
        step = training_step(bench_config(size), batches_from_memory(size))
        for _ in range(int(paths[0])):
            step()
        return
    if kind == "burst":  # FOLDER OUTPUT: test.py as a user runs it, its seconds before the peak
        sys.argv = ["test.py", "--input", paths[0], "--output", paths[1], "--ratio", "8"]
        start = timeit.default_timer()
        runpy.run_path(str(ROOT / "test.py"), run_name="__main__")
        print(timeit.default_timer() - start)
    elif kind == "infer":  # CLIP OUTPUT [SECTION.KEY=VALUE ...]
        enhance_file(bench_config(size, *paths[2:]), paths[0], Path(paths[1]), size)()
    else:
        cfg = bench_config(size, "train.epochs=1", f"train.checkpoint_root={paths[0]}/ckpt",
                           "train.preview_every=0", root=paths[0])
        train.train(cfg, verbose=0)
    print(peak_resident_kib())


def peak_resident_kib():
    """This process's peak resident memory (VmHWM). Not getrusage's ru_maxrss: Linux keeps that
    across exec, so a child started from a large parent reported the parent's peak (every memory
    row of an earlier run read the same 5.9 GiB)."""
    status = Path("/proc/self/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))


def window_frames(size, frames):
    """The frames of each window that test.py's tiling cuts a clip of `frames` frames into."""
    return time_plan(frames, bench_config(size)["test"])[1]


def bench_memory(size, root):
    short, long = Path(root) / "clip.npy", Path(root) / "long.npy"
    short_frames, long_frames = SIZES[size]["clip"][0], SIZES[size]["long_frames"]
    repeat_clip(short, long, long_frames // short_frames)
    window = window_frames(size, short_frames)

    def peak(clip, *overrides):
        return peak_memory_gib(size, "infer", str(clip), str(Path(root) / "out.mp4"), *overrides)

    results = {"inference_window_frames": window, "inference_long_window_frames": window_frames(size, long_frames),
               "inference_peak_memory_gib": peak(short), "inference_long_peak_memory_gib": peak(long),
               "inference_long_same_window_peak_memory_gib": peak(long, f"test.tile_frames={window}")}
    results["inference_memory_ratio"] = results["inference_long_peak_memory_gib"] / results["inference_peak_memory_gib"]
    results["inference_memory_same_window_ratio"] = (results["inference_long_same_window_peak_memory_gib"]
                                                     / results["inference_peak_memory_gib"])
    if not (Path(root) / "file_list").is_file():  # unless the training section made it already
        make_dataset(root, size)
    results["training_peak_memory_gib"] = peak_memory_gib(size, "train", str(root))
    return results


def make_burst(folder, frames, height, width):
    """A burst of `frames` DNG files of a height x width mosaic: a smooth scene, noise per frame."""
    from camera_raw import write_dng
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    scene = 500 + 300 * np.sin(cols / 97) * np.cos(rows / 131)
    for frame in range(frames):
        write_dng(folder / f"{frame:03d}.dng", np.clip(scene + rng.normal(0, 20, scene.shape), 0, 4095).astype(np.uint16))


def bench_burst(size, root):
    counts, height, width = SIZES[size]["burst"]
    results = {}
    for frames in counts:
        folder = Path(root) / f"burst{frames}"
        make_burst(folder, frames, height, width)
        done = subprocess.run([sys.executable, "-m", "lab.benchmark", "--child", size, "burst", str(folder),
                               str(Path(root) / "burst.mp4")], cwd=ROOT, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"benchmark burst of {frames} frames failed:\n{done.stderr[-3000:]}")
        seconds, peak_kib = map(float, done.stdout.split()[-2:])
        results[f"burst_{frames}_peak_memory_gib"] = peak_kib / 2**20
        results[f"burst_{frames}_seconds_per_frame"] = seconds / frames
    return results


def machine():
    cpu, flags = network.cpu_info()
    gpus = [d.name for d in tf.config.list_physical_devices("GPU")]
    policy, why = network.resolve_precision({"precision": "auto"})
    return {"cpu": cpu or platform.processor(), "cores": os.cpu_count(), "gpus": gpus, "tensorflow": tf.__version__,
            "python": platform.python_version(),
            "cpu_flags": sorted(flags & {"avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_tile"}),
            "precision_auto": policy, "precision_auto_why": why}


def judged(results):
    """(figure, value, target, met) for every number, the target and verdict where there is one."""
    for key, value in results.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            target = TARGETS.get(key)
            bound = f"{'>=' if target[0] == 'min' else '<='} {target[1]}" if target else ""
            met = "" if not target else ("yes" if (value >= target[1] if target[0] == "min" else value <= target[1]) else "NO")
            yield key, value, bound, met


def report(results):
    lines = [f"{'figure':<44} {'value':>12} {'target':>10}  met"]
    lines += [f"{key:<44} {value:12.3f} {bound:>10}  {met}" for key, value, bound, met in judged(results)]
    return "\n".join(lines)


def report_markdown(results):
    machine_keys = ("cpu", "cores", "gpus", "cpu_flags", "precision_auto_why", "tensorflow", "torch_version", "python")
    head = "; ".join(f"{key}: {results[key]}" for key in machine_keys if key in results)
    rows = "".join(f"| {key} | {value:.3f} | {bound} | {met} |\n" for key, value, bound, met in judged(results))
    return f"Machine: {head}.\n\n| figure | value | target | met |\n| --- | --- | --- | --- |\n{rows}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the benchmark runs, times nothing real")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per figure (after a warm-up)")
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS),
                        help="measure only these (training needs roofline)")
    parser.add_argument("--compare-torch", action="store_true",
                        help="also time the same U-Net's training step in PyTorch (needs the training section)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args)
    size = "quick" if args.quick else "full"
    if "training" in args.sections and "roofline" not in args.sections:
        parser.error("the training figures are ratios to the roofline: add --sections roofline")
    if args.compare_torch and "training" not in args.sections:
        parser.error("--compare-torch compares with this project's training step: add --sections roofline training")
    if args.compare_torch and importlib.util.find_spec("torch") is None:
        parser.error("--compare-torch needs PyTorch (pip install torch), which the project itself never needs")
    results = {"size": size, **machine()}
    if "roofline" in args.sections:
        results["matmul_f32_gflops"] = matmul_gflops(SIZES[size]["matmul"], tf.float32, args.runs)
        results["matmul_bf16_gflops"] = matmul_gflops(SIZES[size]["matmul"], tf.bfloat16, args.runs)
    with tempfile.TemporaryDirectory(prefix="benchmark_") as root:
        if "training" in args.sections:
            results.update(bench_training(size, args.runs, results, root))
        if args.compare_torch:
            results.update(bench_torch(size, args.runs, results))
        if "inference" in args.sections or "memory" in args.sections:
            make_clip(Path(root) / "clip.npy", *SIZES[size]["clip"])
        if "inference" in args.sections:
            results.update(bench_inference(size, args.runs, root))
        if "memory" in args.sections:
            results.update(bench_memory(size, root))
        if "burst" in args.sections:
            results.update(bench_burst(size, root))
    print(report(results))
    if args.json:
        with atomic_output(args.json) as tmp:
            tmp.write_text(json.dumps(results, indent=1))
        print(f"wrote {args.json}")
        if not args.quick:
            # The JSON file's name is the table's key, so only a run written to figure/ reaches the
            # documents' tables, and runs of the same sections on two machines have two tables.
            figures.update_documents(Path(args.json).stem, report_markdown(results))


if __name__ == "__main__":
    cli.run_script(main)
