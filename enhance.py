"""What test.py does: clips opened (a list, a case, one input), each streamed through the network
into files (video, comparison, sheet, npy) and scored against its ground truth beside the two
classical baselines, and a list's scores as tables.
"""
import contextlib
import csv
import json
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

import baselines
import checkpoints
import data
import metrics
import network
from atomic import atomic_folder, atomic_output
from camera_raw import RawFolder, upright
from video_io import VideoWriter, input_preview, read_video

CASES = {0: ("train", "file_list"), 1: ("validation", "valid_list"), 2: ("test", "test_list"),
         3: ("customized", "customized_list")}
SHEET_FRAMES = 4


def open_input(path, cfg):
    """One clip from --input: a packed npy or a folder of camera raw frames, no ground truth."""
    path = Path(path)
    if path.is_dir():
        path = path.resolve()  # `--input .` names the folder too: its name is the clip's
        frames = RawFolder(path)
        meta = dict(frames.meta, fps=cfg["test"]["fps"])
        # Raw files record no exposure ratio: --ratio (data.ratio) gives one, else it is chosen from the frames.
        return data.make_clip(path.name, frames, None, meta, {**cfg["data"], "ratio": cfg["data"]["ratio"] or "auto"}, path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    if path.suffix.lower() != ".npy":
        try:
            read_video(path, 0, 1)
        except ValueError:
            raise ValueError(f"{path}: not a packed .npy clip nor a folder of camera raw frames") from None
        raise ValueError(f"{path} is an ordinary sRGB video: its colours and tones were already processed by a "
                         "camera, and the network needs raw sensor data (a packed Bayer .npy or a folder of "
                         f"camera raw frames). To try it anyway, synthesise dark raw from it: python synthesis.py {path}")
    return data.open_clip(path, None, cfg["data"])


def open_case(case, cfg):
    name, list_name = CASES[case]
    path = Path(cfg["data"]["lists_dir"]) / list_name
    if case == 3 and not path.is_file():
        raise FileNotFoundError(f"{path}: no customized list. Put packed .npy clips in {cfg['data']['customized_dir']} "
                                "and run generate_file_list.py, or enhance one clip with --input PATH")
    return data.open_list(path, cfg["data"])


def enhance_clip(clip, enhancer, cfg, output, compare=False, sheet=False, save_npy=False):
    """Stream a clip through the network into `output` (.mp4); returns {method: scores} when the
    clip has ground truth, else None. Every file appears only once it is complete."""
    has_gt = clip.gt_rgb is not None
    normalizers = baselines.baseline_normalizers(clip, cfg["data"]) if has_gt else {}
    scores = {name: metrics.VideoScores() for name in ["network", *normalizers]}
    count, height, width, _ = clip.packed_raw.shape
    flip = (clip.meta or {}).get("flip", 0)  # camera raw frames are written as the camera was held
    sheet_frames = set(np.linspace(0, count - 1, min(SHEET_FRAMES, count)).astype(int).tolist())
    sheet_rows = []
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    fps = clip.fps or cfg["test"]["fps"]
    with contextlib.ExitStack() as outputs:
        video = outputs.enter_context(VideoWriter(output, fps))
        if compare:
            comparison = outputs.enter_context(VideoWriter(output.with_name(f"{output.stem}_compare.mp4"), fps))
        if save_npy:  # written as the frames come, in order: a full disk is an error on write, on any system
            npy_path = outputs.enter_context(atomic_output(output.with_suffix(".npy")))
            npy = outputs.enter_context(open(npy_path, "wb"))  # closed before it is renamed
            frame_shape = upright(np.empty((0, 2 * height, 2 * width, 3), np.uint8), flip).shape[1:]  # as written
            np.lib.format.write_array_header_1_0(npy, {"descr": "|u1", "fortran_order": False, "shape": (count, *frame_shape)})
        progress = outputs.enter_context(tqdm(total=count, desc=clip.name, unit="frame", disable=None))  # no bar in a log file
        # Closed first on the way out, so its threads have stopped before the files are dealt with.
        chunks = outputs.enter_context(contextlib.closing(enhancer.enhance(clip)))
        for start, rgb in chunks:
            stop = start + len(rgb)
            shown = upright(rgb, flip)
            video.write(shown)
            progress.update(len(rgb))
            if save_npy:
                npy.write(shown.tobytes())
            if not (has_gt or compare or sheet):  # plain enhancement reads the input only once
                continue
            packed_raw = data.read_frames(clip.packed_raw, start, stop)
            gt = data.read_frames(clip.gt_rgb, start, stop) if has_gt else None
            if has_gt:
                outputs = {"network": rgb, **{name: baselines.render(name, normalize, packed_raw)
                                              for name, normalize in normalizers.items()}}
                metrics.update_all(scores, gt, outputs)
            if compare or sheet:
                panels = [upright(input_preview(clip.normalize(packed_raw)), flip), shown] + ([upright(gt, flip)] if has_gt else [])
                side_by_side = np.concatenate(panels, axis=2)
                if compare:
                    comparison.write(side_by_side)
                sheet_rows += [side_by_side[i - start] for i in sorted(sheet_frames) if start <= i < stop]
    if sheet:
        sheet_path = output.with_name(f"{output.stem}_sheet.png")
        with atomic_output(sheet_path) as tmp:
            if not cv2.imwrite(str(tmp), cv2.cvtColor(np.concatenate(sheet_rows, axis=0), cv2.COLOR_RGB2BGR)):
                raise OSError(f"{sheet_path}: OpenCV could not write it")  # it says so only by returning False
    return {name: s.result() for name, s in scores.items()} if has_gt else None


SCORES = ("psnr", "ssim", "mse_mabd", "motion", "cast_r", "cast_g", "cast_b", "chroma_error", "angle_median",
          "angle_p90", "flicker", "warp_error")


def summarise(per_video):
    """{video: {method: scores}} -> {method: mean scores over videos}. A photo (a 1-frame clip) has
    no change from frame to frame to score (MSE(MABD) and motion are NaN): those two are the mean
    over the videos that have them, not NaN for the whole list."""
    methods = next(iter(per_video.values())).keys()
    return {m: {k: mean_defined([v[m][k] for v in per_video.values() if m in v]) for k in SCORES} for m in methods}


def mean_defined(values):
    """The mean of the values that are not NaN, or NaN where none is."""
    defined = [value for value in values if not np.isnan(value)]
    return float(np.mean(defined)) if defined else float("nan")


def write_metrics(per_video, folder, made_with):
    """metrics.json (with `made_with`: the weights and settings behind the scores; written for every
    run, so that a folder always says which model made it) and, where a clip had ground truth,
    metrics.csv."""
    overall = summarise(per_video) if per_video else {}
    with atomic_output(Path(folder) / "metrics.json") as tmp:
        tmp.write_text(json.dumps({"videos": per_video, "overall": overall, "made_with": made_with}, indent=1))
    if not per_video:
        return overall
    with atomic_output(Path(folder) / "metrics.csv") as tmp, tmp.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["video", "method", "psnr", "ssim", "mse_mabd_1e-3", "motion", "cast_r", "cast_g", "cast_b",
                         "chroma_error", "angle_median_deg", "angle_p90_deg", "flicker_levels", "warp_error_levels",
                         "frames"])
        rows = [(video, method, s) for video, methods in per_video.items() for method, s in methods.items()]
        for video, method, s in rows + [("overall", method, s) for method, s in overall.items()]:
            writer.writerow([video, method, *(f"{s[k]:.5f}" for k in SCORES), s.get("frames", "")])
    return overall


def format_table(overall, videos):
    lines = [f"{'method':<26} {'PSNR':>7} {'SSIM':>7} {'MSE(MABD) 1e-3':>16} {'motion':>7} {'cast R, G, B (levels)':>22} "
             f"{'chroma err':>10} {'angle median, p90':>18} {'flicker':>8} {'warp err':>8}   ({videos} videos)"]
    labels = {"network": "network", "linear": "linear + demosaic + tone", "he": "HE + demosaic"}
    for method, s in overall.items():
        cast = f"{s['cast_r']:+.1f}, {s['cast_g']:+.1f}, {s['cast_b']:+.1f}"
        lines.append(f"{labels.get(method, method):<26} {s['psnr']:7.2f} {s['ssim']:7.4f} {s['mse_mabd']:16.4f} "
                     f"{s['motion']:7.3f} {cast:>22} {s['chroma_error']:10.4f} {s['angle_median']:8.2f}, {s['angle_p90']:5.2f} deg"
                     f"{s['flicker']:8.2f} {s['warp_error']:8.2f}")
    return "\n".join(lines)


def evaluate(clips, cfg, weights, folder, compare=False, sheet=False, save_npy=False):
    """Enhance `clips` into `folder` with a complete configuration; returns the overall scores of
    the clips with ground truth ({method: scores}), also written to metrics.json / .csv. The folder
    is filled as one unit (atomic_folder): it holds one whole run, never two mixed nor half of one."""
    check_results_folder(folder, weights)
    has_photos = any(len(clip.packed_raw) == 1 for clip in clips)
    enhancer = checkpoints.make_enhancer(cfg, weights, photos=has_photos)
    per_video = {}
    with atomic_folder(folder) as staging:
        for clip in clips:
            scores = enhance_clip(clip, enhancer, cfg, staging / f"{clip.name}.mp4", compare, sheet, save_npy)
            if scores:
                per_video[clip.name] = scores
        photo_weights = checkpoints.photo_weights_path(cfg, weights) if has_photos else None
        made_with = {"weights": str(weights), "photo_weights": None if photo_weights is None else str(photo_weights),
                     "precision": network.resolve_precision(cfg["model"])[0], "test": cfg["test"]}
        overall = write_metrics(per_video, staging, made_with)
    print(f"results in {folder}")
    if not per_video:
        return None
    print(format_table(overall, len(per_video)))
    return overall


def check_results_folder(folder, weights):
    """A results folder that holds another model's results (its metrics.json's made_with) is not
    replaced: they are that model's, and a results folder is named after its model (results_name)."""
    path = Path(folder) / "metrics.json"
    if not path.is_file():
        return
    try:
        earlier = json.loads(path.read_text())["made_with"]["weights"]
    except (ValueError, KeyError, TypeError):
        return  # not one of ours to protect: replaced like any earlier run's
    if Path(earlier).resolve() != Path(weights).resolve():
        raise ValueError(f"{folder} holds the results of other weights ({earlier}); choose another "
                         "test.result_root, or move that folder away")
