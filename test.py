"""Enhance whole videos with a trained model, and measure them against the ground truth.

    python test.py CASE               0 train, 1 validation, 2 test (also saves uint8 npy), 3 customized (default)
    python test.py --input PATH       one clip: a packed .npy (its .json sidecar beside it, if any)
                                      or a folder of camera raw frames (DNG and what rawpy reads)
    python test.py --list FILE        the clips of any list (NAME GT_PATH INPUT_PATH lines)

Until the preset's experiment is trained (or with experiment=shipped), the model shipped in
models/shipped/ is used, and for 1-frame clips (photos) the per-frame model shipped beside it in
models/shipped_photo/ (test.photo_weights); an experiment named otherwise must have been trained.

Results go to test.result_root/EXPERIMENT/CASE/ (EXPERIMENT `shipped` for the shipped model; or
--output for one clip): NAME.mp4 (H.264, at the clip's frame rate), optionally NAME_compare.mp4
(input | output | ground truth) and NAME_sheet.png (sample frames), and for clips with ground
truth metrics.csv and metrics.json with PSNR, SSIM and MSE(MABD) of the network and of the two
classical baselines.
"""
import argparse
import contextlib
import csv
import json
import re
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

import baselines
import config
import data
import metrics
import network
from atomic import atomic_folder, atomic_output
from camera_raw import RawFolder, upright
from inference import TiledEnhancer
from video_io import VideoWriter, input_preview, read_video

CASES = {0: ("train", "file_list"), 1: ("validation", "valid_list"), 2: ("test", "test_list"),
         3: ("customized", "customized_list")}
SHEET_FRAMES = 4
# What a checkpoint's own config decides at test time: the model, and what its input looked like.
# Precision is not among them: weights are float32 whichever precision trained them.
CHECKPOINT_KEYS = {"model": ("depth", "base_channels", "temporal_kernel", "resnet", "time_padding"),
                   "data": ("normalization", "apply_ccm", "ratio", "clip_negative")}
SHIPPED = Path(__file__).resolve().parent / "models" / "shipped" / "best.weights.h5"
SHIPPED_PHOTO = Path(__file__).resolve().parent / "models" / "shipped_photo" / "best.weights.h5"


# ---------------------------------------------------------------------------------------------
# Configuration and weights


def weights_path(cfg, explicit=None):
    """--weights, else the experiment's checkpoint. The shipped model stands in for the preset's own
    experiment until that is trained, and `experiment=shipped` names it; any other experiment must
    have been trained, so that a mistyped name stops instead of scoring the shipped model."""
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such weights file")
        return path
    path = Path(cfg["train"]["checkpoint_root"]) / cfg["experiment"] / f"{cfg['test']['checkpoint']}.weights.h5"
    if path.is_file():
        return path
    if cfg["experiment"] in (SHIPPED.parent.name, cfg["preset"]) and SHIPPED.is_file():
        return SHIPPED
    raise FileNotFoundError(f"no trained weights for experiment {cfg['experiment']!r} at {path}: train it "
                            f"(python train.py --set experiment={cfg['experiment']}), pass --weights PATH, or set "
                            f"experiment={SHIPPED.parent.name} for the shipped model")


def saved_config(weights):
    """The config.yaml that train.py wrote beside the weights, or None."""
    path = Path(weights).parent / "config.yaml"
    if not path.is_file():
        return None
    saved = config.read_yaml(path.read_text(), path)
    if not isinstance(saved, dict):
        raise ValueError(f"{path}: expected the mapping of sections that train.py writes, got {type(saved).__name__}")
    return saved


def checkpoint_settings(saved):
    """{section: {key: value}} of the CHECKPOINT_KEYS that a saved config.yaml (or None) holds."""
    return {section: {k: v for k, v in (saved or {}).get(section, {}).items() if k in keys}
            for section, keys in CHECKPOINT_KEYS.items()}


def test_config(args):
    """The weights to use, and the command line's configuration on top of the model and input
    settings that built them (so `python test.py 2` needs no repetition of the training's overrides).
    cfg["experiment"] becomes the name the results are filed under: the model's own (results_name)."""
    cfg = config.from_args(args)
    weights = weights_path(cfg, args.weights)
    saved = saved_config(weights)
    if saved is not None:
        cfg = config.load_config(args.config, args.set, base=checkpoint_settings(saved))
        check_input_settings(cfg, saved, weights)
    cfg["experiment"] = results_name(cfg, weights, args.weights)
    return cfg, weights


def check_input_settings(cfg, saved, weights):
    """A setting of how the input is normalised that differs from the one the weights were trained
    with would ruin the output without a word (washed out, a cast): it stops instead. The exposure
    ratio is the clip's, not the model's, and may differ."""
    for key in ("normalization", "apply_ccm", "clip_negative"):
        trained = saved.get("data", {}).get(key)
        if trained is not None and cfg["data"][key] != trained:
            raise ValueError(f"data.{key}={cfg['data'][key]} contradicts the weights {weights}: they were trained on "
                             f"data.{key}={trained} (their config.yaml); leave the setting out")


def results_name(cfg, weights, explicit):
    """The folder under test.result_root that this model's results go to: `shipped` for the
    shipped model, WEIGHTS-FOLDER_NAME for --weights (another model's results are never filed under
    the preset's experiment), EXPERIMENT for its best weights, EXPERIMENT_last for its last."""
    if Path(weights).resolve() == SHIPPED.resolve():
        return SHIPPED.parent.name
    if explicit:
        name = f"{Path(weights).resolve().parent.name}_{Path(weights).name.removesuffix('.h5').removesuffix('.weights')}"
        return re.sub(r"[^A-Za-z0-9_.-]", "_", name)
    return cfg["experiment"] if cfg["test"]["checkpoint"] == "best" else f"{cfg['experiment']}_{cfg['test']['checkpoint']}"


def photo_weights_path(cfg, weights):
    """The weights of the per-frame model that enhances 1-frame clips (photos), or None: as
    test.photo_weights says, where `shipped` means models/shipped_photo/ beside the shipped model."""
    choice = cfg["test"]["photo_weights"]
    if choice == "shipped":
        return SHIPPED_PHOTO if Path(weights).resolve() == SHIPPED.resolve() and SHIPPED_PHOTO.is_file() else None
    if choice is not None and not Path(choice).is_file():
        raise FileNotFoundError(f"test.photo_weights: {choice}: no such weights file")
    return None if choice is None else Path(choice)


def photo_config(cfg, weights, photo_weights):
    """cfg with the photo model's own model settings; its input must be normalised as the video model's."""
    saved = saved_config(photo_weights)
    if saved is None:
        raise FileNotFoundError(f"test.photo_weights: {photo_weights}: no config.yaml beside it (train.py writes one)")
    video, photo = checkpoint_settings(saved_config(weights)), checkpoint_settings(saved)
    differs = [f"data.{key}" for key in CHECKPOINT_KEYS["data"] if video["data"].get(key) != photo["data"].get(key)]
    if differs:
        raise ValueError(f"test.photo_weights: {photo_weights} was trained on other input than {weights} "
                         f"({', '.join(differs)} differ in their config.yaml)")
    return {**cfg, "model": {**cfg["model"], **photo["model"]}}


def load_generator(cfg, weights):
    """The configured U-Net with the weights; a misfit names what differs from the checkpoint."""
    model = network.build_unet(cfg["model"])
    network.load_weights(model, cfg["model"], weights, checkpoint_settings(saved_config(weights))["model"])
    return model


# ---------------------------------------------------------------------------------------------
# Inputs


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


def check_output(output, input_path):
    """--output must be a new .mp4 file name, not a folder nor the input itself."""
    if output.is_dir():
        raise ValueError(f"--output {output} is a folder: give a file name ending in .mp4")
    if output.suffix.lower() != ".mp4":
        raise ValueError(f"--output {output}: the enhanced video is an H.264 .mp4, so the name must end in .mp4")
    if output.resolve() == input_path.resolve():
        raise ValueError(f"--output {output} is the input itself: choose another name")
    return output


def open_case(case, cfg):
    name, list_name = CASES[case]
    path = Path(cfg["data"]["lists_dir"]) / list_name
    if case == 3 and not path.is_file():
        raise FileNotFoundError(f"{path}: no customized list. Put packed .npy clips in {cfg['data']['customized_dir']} "
                                "and run generate_file_list.py, or enhance one clip with --input PATH")
    return data.open_list(path, cfg["data"])


# ---------------------------------------------------------------------------------------------
# One clip


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


# ---------------------------------------------------------------------------------------------
# Tables


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


def exposure_ratio(text):
    """--ratio: a positive number, or auto."""
    if text == "auto":
        return text
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not value > 0 or not np.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a positive number or auto, got {text!r}")
    return value


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("case", nargs="?", type=int, choices=sorted(CASES), help="the list to enhance (default: 3)")
    parser.add_argument("--input", help="one clip: a packed .npy or a folder of camera raw frames")
    parser.add_argument("--output", help="with --input: the mp4 to write")
    parser.add_argument("--list", help="enhance the clips of this list file (results in a folder named after it)")
    parser.add_argument("--weights", help="a .weights.h5 file (default: the experiment's checkpoint)")
    parser.add_argument("--ratio", type=exposure_ratio,
                        help="exposure ratio of linear input: a number, or auto to choose one from the frames "
                             "(the default for camera raw folders)")
    parser.add_argument("--compare", action="store_true", help="also write NAME_compare.mp4: input | output | truth")
    parser.add_argument("--sheet", action="store_true", help="also write NAME_sheet.png of sample frames")
    config.add_arguments(parser)
    args = parser.parse_args(argv)
    # Each names what to enhance; given two, one would be ignored without a word.
    if sum(choice is not None for choice in (args.case, args.input, args.list)) > 1:
        parser.error("CASE, --input and --list each name what to enhance: give one of them")
    if args.output and not args.input:
        parser.error("--output names the video of one --input clip; a list's results go to test.result_root")
    if args.case is None:
        args.case = 3
    if args.ratio is not None:
        args.set.append(f"data.ratio={args.ratio}")
    return args


def main(argv=None):
    args = parse_args(argv)
    cfg, weights = test_config(args)
    root = Path(cfg["test"]["result_root"]) / cfg["experiment"]
    if args.input:  # inputs and outputs are checked before the model costs anything
        clips = [open_input(args.input, cfg)]
        output = check_output(Path(args.output or root / "input" / f"{clips[0].name}.mp4"), Path(args.input))
    elif args.list:
        folder, clips = root / Path(args.list).name, data.open_list(args.list, cfg["data"])
    else:
        folder, clips = root / CASES[args.case][0], open_case(args.case, cfg)
    if args.input:
        enhance_clip(clips[0], make_enhancer(cfg, weights, photos=len(clips[0].packed_raw) == 1), cfg, output,
                     args.compare, args.sheet)
        print(f"wrote {output}")
        return
    evaluate(clips, cfg, weights, folder, args.compare, args.sheet, save_npy=args.case == 2 and not args.list)


def make_enhancer(cfg, weights, photos=True):
    """The TiledEnhancer of the weights, with the photo model for 1-frame clips where `photos` may
    come (test.photo_weights is checked either way)."""
    print(f"weights: {weights}")
    print("precision: {} ({})".format(*network.resolve_precision(cfg["model"])))
    photo, photo_weights = None, photo_weights_path(cfg, weights)
    if photo_weights:
        photo_cfg = photo_config(cfg, weights, photo_weights)
        if photos:
            print(f"photos (1-frame clips): {photo_weights}")
            photo = TiledEnhancer(load_generator(photo_cfg, photo_weights), cfg["test"])
    return TiledEnhancer(load_generator(cfg, weights), cfg["test"], photo)


def evaluate(clips, cfg, weights, folder, compare=False, sheet=False, save_npy=False):
    """Enhance `clips` into `folder` with a complete configuration; returns the overall scores of
    the clips with ground truth ({method: scores}), also written to metrics.json / .csv. The folder
    is filled as one unit (atomic_folder): it holds one whole run, never two mixed nor half of one."""
    check_results_folder(folder, weights)
    has_photos = any(len(clip.packed_raw) == 1 for clip in clips)
    enhancer = make_enhancer(cfg, weights, photos=has_photos)
    per_video = {}
    with atomic_folder(folder) as staging:
        for clip in clips:
            scores = enhance_clip(clip, enhancer, cfg, staging / f"{clip.name}.mp4", compare, sheet, save_npy)
            if scores:
                per_video[clip.name] = scores
        photo_weights = photo_weights_path(cfg, weights) if has_photos else None
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


if __name__ == "__main__":
    config.run_script(main)
