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
from pathlib import Path

import numpy as np

import checkpoints
import cli
import data
import enhance


def check_output(output, input_path):
    """--output must be a new .mp4 file name, not a folder nor the input itself."""
    if output.is_dir():
        raise ValueError(f"--output {output} is a folder: give a file name ending in .mp4")
    if output.suffix.lower() != ".mp4":
        raise ValueError(f"--output {output}: the enhanced video is an H.264 .mp4, so the name must end in .mp4")
    if output.resolve() == input_path.resolve():
        raise ValueError(f"--output {output} is the input itself: choose another name")
    return output


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
    parser.add_argument("case", nargs="?", type=int, choices=sorted(enhance.CASES), help="the list to enhance (default: 3)")
    parser.add_argument("--input", help="one clip: a packed .npy or a folder of camera raw frames")
    parser.add_argument("--output", help="with --input: the mp4 to write")
    parser.add_argument("--list", help="enhance the clips of this list file (results in a folder named after it)")
    parser.add_argument("--weights", help="a .weights.h5 file (default: the experiment's checkpoint)")
    parser.add_argument("--ratio", type=exposure_ratio,
                        help="exposure ratio of linear input: a number, or auto to choose one from the frames "
                             "(the default for camera raw folders)")
    parser.add_argument("--compare", action="store_true", help="also write NAME_compare.mp4: input | output | truth")
    parser.add_argument("--sheet", action="store_true", help="also write NAME_sheet.png of sample frames")
    cli.add_arguments(parser)
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
    cfg, weights = checkpoints.configure(args.set, args.config, args.weights)
    root = Path(cfg["test"]["result_root"]) / cfg["experiment"]
    if args.input:  # inputs and outputs are checked before the model costs anything
        clips = [enhance.open_input(args.input, cfg)]
        output = check_output(Path(args.output or root / "input" / f"{clips[0].name}.mp4"), Path(args.input))
    elif args.list:
        folder, clips = root / Path(args.list).name, data.open_list(args.list, cfg["data"])
    else:
        folder, clips = root / enhance.CASES[args.case][0], enhance.open_case(args.case, cfg)
    if args.input:
        enhance.enhance_clip(clips[0], checkpoints.make_enhancer(cfg, weights, photos=len(clips[0].packed_raw) == 1), cfg, output,
                     args.compare, args.sheet)
        print(f"wrote {output}")
        return
    enhance.evaluate(clips, cfg, weights, folder, args.compare, args.sheet, save_npy=args.case == 2 and not args.list)


if __name__ == "__main__":
    cli.run_script(main)
