"""Your own camera's noise, from a few frames: a profile that synthesis.py then follows.

    python calibrate.py --bias 800=bias_800/ 3200=bias_3200/ --flats 800=flat_a/ 800=flat_b/ 800=flat_c/ \
                        --output my_camera.yaml

Each folder (or packed .npy file) holds frames of one ISO setting, named before the `=`:
- bias frames: lens cap on, the shortest exposure. They give, per ISO, the black level of each
  CFA channel, the read noise (Gaussian sigma of a pixel around its row's mean) and the row noise
  (the spread of row means, less the part read noise explains);
- flat frames (optional): an evenly lit, defocused surface, one brightness level per folder, a few
  levels at the same ISO. Photon transfer (Wei et al., ELD, CVPR 2020): the variance of the
  difference of two frames of a level, halved, against its mean above black, is a line whose slope
  is the shot-noise gain K in DN per photo-electron. Saturated and near-black levels are left out.
Across ISOs with flats, read and row noise are fitted log-linearly against K, as ELD does, so
that synthesis can draw gains between and a little beyond the measured ones.

The profile (YAML) and a photon transfer plot (figure/NAME_photon_transfer.png) are written.
Use it with `--set synthesis.camera=my_camera.yaml` when synthesising training data.
"""
import argparse
from pathlib import Path

import numpy as np
import yaml

import cli
import data
from atomic import atomic_output
from camera_raw import RawFolder

MIN_FRAMES = {"bias": 2, "flats": 2}
SATURATION = 0.9  # of white - black: flats above it are left out of the fit
NEAR_BLACK = 5.0  # DN: flats below it say more about read noise than about K


def check_iso(frames, iso):
    """A folder's ISO as its files record it (RawFolder has checked that they agree), where they
    record one, against the command line's."""
    recorded = frames.meta["iso"]
    if recorded and recorded != iso:
        raise ValueError(f"{frames.paths[0].parent}: the files record ISO {recorded:g}, the command line says {iso}")


def read_frames(path, iso):
    """(packed (F, h, w, 4) uint16 in GBRG order, white level or None) from a folder of camera raw
    frames of that ISO or a packed .npy clip (its white level from a sidecar beside it, if any)."""
    path = Path(path)
    if path.is_dir():
        frames = RawFolder(path)
        check_iso(frames, iso)
        return np.asarray(frames[0:len(frames)]), frames.meta["white_level"]
    sidecar = data.load_sidecar(path) or {}
    return np.asarray(data.load_packed_raw(path)), sidecar.get("white_level")


def bias_statistics(packed):
    """Black level per packed channel, read noise and row noise (DN) of bias frames."""
    black = packed.reshape(-1, 4).mean(axis=0)
    mosaic = data.mosaic_from_packed(packed.astype(np.float64) - black)  # (F, H, W), zero mean per channel
    row_means = mosaic.mean(axis=2, keepdims=True)
    read_var = (mosaic - row_means).var() * mosaic.shape[2] / (mosaic.shape[2] - 1)
    row_var = (row_means - row_means.mean(axis=1, keepdims=True)).var() - read_var / mosaic.shape[2]
    return black, float(np.sqrt(read_var)), float(np.sqrt(max(row_var, 0.0)))


def flat_point(packed, black):
    """(mean above black, variance) of one brightness level: half the variance of the difference of
    consecutive frames, so a fixed pattern (vignetting, dust) cancels. Per packed channel."""
    signal = packed.astype(np.float64) - black
    differences = np.diff(signal, axis=0)
    return signal.reshape(-1, 4).mean(axis=0), differences.reshape(-1, 4).var(axis=0) / 2


def fit_gain(points, white, black):
    """K (DN per electron) from photon transfer points [(means, variances)], all channels together."""
    means = np.concatenate([m for m, _ in points])
    variances = np.concatenate([v for _, v in points])
    usable = (means > NEAR_BLACK) & (means < SATURATION * (white - black.max()))
    if usable.sum() < 2 or np.ptp(means[usable]) <= 0:
        raise ValueError("the flats give fewer than two usable brightness levels (between "
                         f"{NEAR_BLACK} DN above black and {SATURATION:.0%} of saturation): add darker or brighter flats")
    slope, intercept = np.polyfit(means[usable], variances[usable], 1)
    return float(slope), means, variances, usable


def log_linear(x, y):
    """[slope, intercept] of log y = slope * log x + intercept, or a flat line through one point."""
    if len(x) < 2:
        return [0.0, float(np.log(y[0]))]
    slope, intercept = np.polyfit(np.log(x), np.log(y), 1)
    return [float(slope), float(intercept)]


def parse_sets(items, what):
    """ISO=PATH arguments -> {iso: [paths]}. Flats may give several folders an ISO (one exposure
    level each); bias frames one folder an ISO, as a second would be a mistake, not more frames."""
    sets = {}
    for item in items or ():
        iso, sep, path = item.partition("=")
        if not sep or not iso.strip().isdigit():
            raise ValueError(f"--{what} {item!r}: give ISO=FOLDER, e.g. 800=bias_800/")
        if what == "bias" and int(iso) in sets:
            raise ValueError(f"--bias {item!r}: ISO {int(iso)} is given twice; put its bias frames in one folder")
        sets.setdefault(int(iso), []).append(Path(path))
    return sets


def calibrate(bias_sets, flat_sets):
    """The camera profile as a dict, and the photon transfer points for the plot."""
    profile, plots = {"isos": {}}, {}
    for iso, paths in sorted(bias_sets.items()):
        frames = [read_frames(p, iso) for p in paths]
        packed = np.concatenate([f for f, _ in frames])
        if len(packed) < MIN_FRAMES["bias"]:
            raise ValueError(f"ISO {iso}: {len(packed)} bias frame(s); at least {MIN_FRAMES['bias']} are needed")
        white = frames[0][1]
        black, read, row = bias_statistics(packed)
        entry = {"black_level": [round(float(b), 3) for b in black], "read_noise": read, "row_noise": row}
        if white is not None:
            profile["white_level"] = float(white)
        for path in flat_sets.get(iso, []):
            level, _ = read_frames(path, iso)
            if len(level) < MIN_FRAMES["flats"]:
                raise ValueError(f"{path}: {len(level)} flat frame(s); at least {MIN_FRAMES['flats']} of each level are needed")
            plots.setdefault(iso, []).append(flat_point(level, black))
        if iso in plots:
            white_level = profile.get("white_level", 2**int(np.ceil(np.log2(packed.max() + 1))) - 1)
            entry["shot_gain"], *_ = fit_gain(plots[iso], white_level, black)
        profile["isos"][iso] = entry
    if not profile["isos"]:
        raise ValueError("no bias frames: give --bias ISO=FOLDER at least once")
    gains = {iso: e for iso, e in profile["isos"].items() if "shot_gain" in e}
    if gains:
        k = [e["shot_gain"] for e in gains.values()]
        profile["read_noise_vs_gain"] = log_linear(k, [e["read_noise"] for e in gains.values()])
        profile["row_noise_vs_gain"] = log_linear(k, [max(e["row_noise"], 1e-3) for e in gains.values()])
        profile["shot_gain_range"] = [min(k), max(k)]
    profile["black_level"] = list(profile["isos"][min(profile["isos"])]["black_level"])  # a copy: no YAML anchor
    return profile, plots


def plot_photon_transfer(plots, profile, output):
    import matplotlib  # only when a plot is asked for
    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt
    figure, axis = plt.subplots(figsize=(6, 4))
    for iso, points in sorted(plots.items()):
        means = np.concatenate([m for m, _ in points])
        variances = np.concatenate([v for _, v in points])
        line = axis.plot(means, variances, "o", label=f"ISO {iso}")[0]
        k = profile["isos"][iso]["shot_gain"]
        x = np.linspace(0, means.max(), 50)
        axis.plot(x, k * x + profile["isos"][iso]["read_noise"] ** 2, color=line.get_color(), alpha=0.6,
                  label=f"K = {k:.3f} DN/e-")
    axis.set(xlabel="mean above black (DN)", ylabel="variance (DN^2)", title="photon transfer")
    axis.grid(alpha=0.3)
    axis.legend(fontsize="small")
    figure.tight_layout()
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(output) as tmp:
        figure.savefig(tmp, dpi=120, format="png")
    plt.close(figure)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bias", nargs="+", required=True, metavar="ISO=PATH", help="bias frames per ISO")
    parser.add_argument("--flats", nargs="+", metavar="ISO=PATH", help="flat frames, one brightness level per path")
    parser.add_argument("--output", required=True, help="the camera profile to write (.yaml)")
    args = parser.parse_args(argv)
    profile, plots = calibrate(parse_sets(args.bias, "bias"), parse_sets(args.flats, "flats"))
    output = Path(args.output)
    with atomic_output(output) as tmp:
        tmp.write_text(yaml.safe_dump(profile, sort_keys=False))
    print(yaml.safe_dump(profile, sort_keys=False))
    print(f"wrote {output}")
    if plots:
        plot = Path("figure") / f"{output.stem}_photon_transfer.png"
        plot_photon_transfer(plots, profile, plot)
        print(f"wrote {plot}")


if __name__ == "__main__":
    cli.run_script(main)
