"""Reading sRGB video through the ffmpeg binary that imageio-ffmpeg ships (no system ffmpeg)."""
from pathlib import Path

import imageio_ffmpeg
import numpy as np


def read_video(path, start=0, count=None):
    """Frames [start, start + count) of a video as uint8 RGB (F, H, W, 3), and its frame rate."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such video file")
    try:
        reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
        meta = next(reader)
    except (RuntimeError, OSError, StopIteration) as error:
        raise ValueError(f"{path}: ffmpeg cannot read it as a video ({error})") from None
    width, height = meta["size"]
    frames = []
    try:
        for index, buffer in enumerate(reader):
            if count is not None and index >= start + count:
                break
            if index >= start:
                frames.append(np.frombuffer(buffer, np.uint8).reshape(height, width, 3))
    finally:
        reader.close()
    if not frames or (count is not None and len(frames) < count):
        raise ValueError(f"{path}: asked for frames {start}..{start + (count or 1) - 1}, "
                         f"but the video has only {start + len(frames)}")
    return np.stack(frames), float(meta["fps"])
