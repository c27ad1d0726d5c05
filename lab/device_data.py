"""Carry the training and validation clips to a machine that has neither the footage nor ffmpeg
(the lent GPU machines, whose transfers are limited to 64 MiB).

    python -m lab.device_data pack   [--config FILE] [--set ...]   here:  lists of data.lists_dir -> device_data/
    python -m lab.device_data unpack [--config FILE] [--set ...]   there: device_data/ -> data.input_dir, gt_dir, lists

The dark raw is mostly noise and does not compress; the bright ground truth does. `pack` writes
each listed clip's ground truth as a 4:4:4 H.264 video close to lossless (video_io.ARCHIVE) beside
its sidecar; `unpack` decodes them with OpenCV and synthesises the dark raw again from the
sidecar's camera, with fresh noise drawn from the clip's name, so each pair is exact again.
"""
import argparse
import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import cv2
import numpy as np
from skimage.metrics import peak_signal_noise_ratio
from tqdm import tqdm

import cli
import data
import generate_file_list
import synthesis
from atomic import atomic_output

PACKED_DIR = Path("device_data")
LISTS = ("file_list", "valid_list")


def pack(cfg, out_dir=PACKED_DIR):
    import video_io  # here, not above: the machine that unpacks has no ffmpeg

    out_dir.mkdir(parents=True, exist_ok=True)
    fidelity = []  # PSNR of each packed ground truth, decoded as unpack will, against its frames
    for list_name in LISTS:
        names = []
        for name, gt_path, input_path in tqdm(data.read_file_list(Path(cfg["data"]["lists_dir"]) / list_name),
                                              desc=f"packing {list_name}", unit="clip"):
            meta, gt_rgb = data.load_sidecar(input_path), np.load(gt_path, allow_pickle=False)
            video_io.write_video(out_dir / f"{name}.mp4", gt_rgb, meta["fps"], archive=True)
            fidelity.append(peak_signal_noise_ratio(gt_rgb, decode(out_dir / f"{name}.mp4")))
            with atomic_output(out_dir / f"{name}.json") as tmp:
                tmp.write_text(json.dumps(meta, indent=1))
            names.append(name)
        with atomic_output(out_dir / list_name) as tmp:
            tmp.write_text("".join(f"{name}\n" for name in names))
    size = sum(path.stat().st_size for path in out_dir.iterdir())
    print(f"{out_dir}: {len(fidelity)} clips, {size / 1e6:.1f} MB; their ground truth decodes to "
          f"{min(fidelity):.1f}-{max(fidelity):.1f} dB PSNR against the frames ({np.mean(fidelity):.1f} on average)")


def decode(path):
    """Every frame of a video as uint8 RGB (F, H, W, 3), through OpenCV's own FFmpeg."""
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    capture.release()
    if not frames:
        raise ValueError(f"{path}: OpenCV cannot read it as a video")
    return np.stack(frames)


def unpack(cfg, packed_dir=PACKED_DIR, workers=None):
    """A process a clip at a time, on every core: each takes about a second, and a lent machine's
    minutes are few. Each clip's noise is drawn from its name, so the order does not matter."""
    lists_dir = Path(cfg["data"]["lists_dir"])
    lists_dir.mkdir(parents=True, exist_ok=True)
    # spawn, not fork: the caller may hold TensorFlow's or JAX's threads, which a fork can deadlock
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        for list_name in LISTS:
            names = (packed_dir / list_name).read_text().split()
            jobs = [pool.submit(unpack_clip, cfg, packed_dir, name) for name in names]
            for job in tqdm(as_completed(jobs), total=len(jobs), desc=f"unpacking {list_name}", unit="clip"):
                error = job.exception()
                if error:  # raised again from this file, so that run_script prints a damaged file's one line
                    pool.shutdown(cancel_futures=True)  # not after the clips still queued
                    raise error.with_traceback(None)
            generate_file_list.write_list(lists_dir / list_name, names, cfg["data"])


def unpack_clip(cfg, packed_dir, name):
    meta = json.loads((packed_dir / f"{name}.json").read_text())
    gt_rgb = decode(packed_dir / f"{name}.mp4")
    params = synthesis.CameraParams(**meta["simulation"])
    rng = synthesis.clip_rng(cfg["synthesis"]["seed"], name, "unpacked")
    synthesis.write_pair(name, gt_rgb, synthesis.synthesize(gt_rgb, params, rng), meta, cfg["data"])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["pack", "unpack"])
    cli.add_arguments(parser)
    args = parser.parse_args(argv)
    cfg = cli.from_args(args)
    pack(cfg) if args.action == "pack" else unpack(cfg)


if __name__ == "__main__":
    cli.run_script(main)
