"""Reading and writing sRGB video through the ffmpeg binary that imageio-ffmpeg ships (no system
ffmpeg), and the uint8 frames it writes: enhanced RGB, or the network's input made viewable."""
import contextlib
import subprocess
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np

import data
from atomic import atomic_output


def read_video(path, start=0, count=None):
    """Frames [start, start + count) of a video as uint8 RGB (F, H, W, 3), and its frame rate."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such video file")
    try:
        reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
        meta = next(reader)
    except (RuntimeError, OSError, StopIteration) as error:  # imageio-ffmpeg's first line; ffmpeg's whole log follows
        raise ValueError(f"{path}: ffmpeg cannot read it as a video ({str(error).splitlines()[0]})") from None
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


ARCHIVE = ["-pix_fmt", "yuv444p", "-crf", "12", "-preset", "slow"]  # full colour, ~44 dB: a stand-in for the frames


class VideoWriter:
    """Streams uint8 RGB chunks (N, H, W, 3), H and W even, into an H.264 yuv420p mp4 that
    browsers play (or, with `archive`, a 4:4:4 one close to lossless that is a tenth of the raw
    frames). The file appears under its name only when the writer closes without error and
    ffmpeg's file holds every frame: ffmpeg's exit status is not reported through imageio-ffmpeg,
    so a full disk would otherwise pass for success and replace a good file with a broken one."""

    def __init__(self, path, fps, archive=False):
        self.path, self.fps, self.archive = Path(path), fps, archive
        self._stack = contextlib.ExitStack()
        self._writer = None
        self.frames = 0

    def __enter__(self):
        self._tmp = self._stack.enter_context(atomic_output(self.path))
        return self

    def write(self, frames):
        if self._writer is None:  # ffmpeg starts once the frame size is known
            height, width = frames.shape[1:3]
            self._writer = imageio_ffmpeg.write_frames(
                str(self._tmp), (width, height), fps=self.fps, codec="libx264", pix_fmt_out="yuv420p",
                macro_block_size=2, ffmpeg_log_level="error",
                output_params=ARCHIVE if self.archive else ["-preset", "veryfast"])  # veryfast: a third of the default's CPU time, 4 % larger
            self._writer.send(None)
        try:
            for frame in frames:
                self._writer.send(np.ascontiguousarray(frame, dtype=np.uint8))
        except OSError:  # ffmpeg has exited: imageio-ffmpeg's broken pipe
            raise OSError(f"{self.path}: ffmpeg stopped after {self.frames} frames (is the disk full?); nothing was "
                          "written under that name") from None
        self.frames += len(frames)

    def __exit__(self, *error):
        if self._writer is not None:
            self._writer.close()
        if error[0] is None:
            try:
                self._check()
            except OSError as failure:
                self._stack.__exit__(type(failure), failure, failure.__traceback__)
                raise
        return self._stack.__exit__(*error)

    def _check(self):
        if not self.frames:  # the file atomic_output made is still empty
            raise OSError(f"{self.path}: no frames were given; nothing was written under that name")
        written = count_frames(self._tmp)
        if written != self.frames:
            raise OSError(f"{self.path}: ffmpeg wrote {written} of {self.frames} frames (is the disk full?); "
                          "nothing was written under that name")


def count_frames(path):
    """The video packets in a file (0 if ffmpeg cannot open it), counted without decoding them:
    imageio_ffmpeg.count_frames_and_secs decodes every frame again, on the cores the model needs."""
    done = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-nostats", "-i", str(path), "-map", "0:v:0",
                           "-c", "copy", "-f", "null", "-", "-progress", "pipe:1"], capture_output=True, text=True)
    counts = [line.split("=")[1] for line in done.stdout.splitlines() if line.startswith("frame=")]
    return int(counts[-1]) if counts else 0


def write_video(path, frames, fps, archive=False):
    """Write a whole (F, H, W, 3) uint8 video."""
    with VideoWriter(path, fps, archive) as writer:
        writer.write(frames)


def to_uint8(rgb):
    """Float RGB in [0, 1] -> the uint8 levels a frame is saved as (rounded to nearest, ties to even,
    and saturated). OpenCV's saturating cast does it in one pass, where numpy takes four (clip, scale,
    round, cast); addWeighted is its call that scales into another depth (the second term is 0)."""
    flat = np.ascontiguousarray(rgb).reshape(-1, rgb.shape[-1])
    return cv2.addWeighted(flat, 255.0, flat, 0.0, 0.0, dtype=cv2.CV_8U).reshape(rgb.shape)


def input_preview(packed):
    """What the network sees, viewable: (R, mean G, B) of each block, shown at output size."""
    return to_uint8(data.block_rgb(packed)).repeat(2, axis=-3).repeat(2, axis=-2)
