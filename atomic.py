"""Every output of the project is written through this: a file appears under its name only once
it is complete, so a crash, a kill or a full disk never leaves a half-written file over a good one."""
import contextlib
import os
from pathlib import Path


@contextlib.contextmanager
def atomic_output(path):
    """Yield a temporary path beside `path`; rename it over `path` only if the block succeeds,
    so that a crash never leaves a half-written file where a good one was."""
    path = Path(path)
    tmp = path.with_name(f".tmp{os.getpid()}.{path.name}")  # keeps the suffixes writers look at
    try:  # made now, empty: a folder that cannot be written in is found before the work that fills it
        tmp.touch()
    except OSError as error:
        raise OSError(f"{path}: cannot write there ({error.strerror})") from None
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
