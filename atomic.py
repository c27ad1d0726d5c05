"""Every output of the project is written through this: a file appears under its name only once
it is complete, so a crash, a kill or a full disk never leaves a half-written file over a good one.
Temporary names are `.tmpPID.NAME`: what a killed process left is known by its dead PID, and removed."""
import contextlib
import os
import re
import shutil
from pathlib import Path

TEMPORARY = re.compile(r"\.tmp(\d+)\.")  # the start of every temporary name: .tmpPID.


@contextlib.contextmanager
def atomic_output(path):
    """Yield a temporary path beside `path`; rename it over `path` only if the block succeeds,
    so that a crash never leaves a half-written file where a good one was."""
    path = Path(path)
    remove_leftovers(path.parent)
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


def running(pid):
    """Whether a process with this PID exists (ours, or another user's)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_leftovers(folder):
    """Remove the temporary files and folders that killed runs left in `folder` (their PID no longer
    runs): a kill -9 runs no clean-up, and what it left must not be mistaken for output."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    for entry in folder.iterdir():
        match = TEMPORARY.match(entry.name)
        if match and not running(int(match.group(1))):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_folder(path):
    """Yield a fresh temporary folder beside `path`; when the block succeeds it replaces `path`
    whole (the old folder is moved aside, the new one renamed in, the old one removed), so a
    folder's files are always those of one complete run, never a mix of two."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(path.parent)
    tmp = path.with_name(f".tmp{os.getpid()}.{path.name}")
    old = path.with_name(f".tmp{os.getpid()}.old.{path.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
    except OSError as error:
        raise OSError(f"{path}: cannot write there ({error.strerror})") from None
    try:
        yield tmp
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
