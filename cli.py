"""How every script runs: its configuration from the command line, and its end.

A script's main() runs under run_script: an error the project raised on purpose is one line and
exit status 2, Ctrl-C or a kill unwinds (temporary outputs removed) and exits 130 or 128 + signal,
and anything else is a bug that keeps its traceback.
"""
import errno
import signal
import sys
import traceback
from pathlib import Path

import config

STOP_REQUESTS = []  # what a kill or Ctrl-C raised: callbacks.StopOnSignal raises it again if it was swallowed


def _stop(signum, frame):
    stop = KeyboardInterrupt() if signum == signal.SIGINT else SystemExit(128 + signum)
    STOP_REQUESTS.append(stop)
    raise stop


# Where the project's own errors are raised: the product, and the lab beside it.
PROJECT_FOLDERS = {Path(__file__).resolve().parent, Path(__file__).resolve().parent / "lab"}
# Errors that say what state the machine is in, wherever they are raised: not bugs.
MACHINE_STATES = {errno.ENOSPC, errno.EROFS, errno.EACCES}


def run_script(main):
    """Run a script's main(). An error the project raised on purpose (a bad file, value or key: its
    message names the culprit and what to do), or a full disk or a folder this user cannot write,
    prints that one line and exits with status 2; an error raised anywhere else is a bug and keeps
    its traceback. A kill (SIGTERM) unwinds like Ctrl-C, so temporary outputs are removed and
    ffmpeg is stopped instead of left writing."""
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        return main()
    except KeyboardInterrupt:
        print("stopped (Ctrl-C): files already complete are kept, unfinished ones removed; rerun the same command "
              "to start again (train.py resumes from its last epoch)", file=sys.stderr)
        raise SystemExit(128 + signal.SIGINT) from None
    except (ValueError, OSError, KeyError) as error:
        raised_in = Path(traceback.extract_tb(error.__traceback__)[-1].filename).resolve().parent
        if raised_in not in PROJECT_FOLDERS and getattr(error, "errno", None) not in MACHINE_STATES:
            raise
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(2) from None


def add_arguments(parser):
    """The two ways every script takes configuration: a YAML file, then single values."""
    parser.add_argument("--config", metavar="FILE.yaml", help="YAML file of overrides of config.DEFAULTS")
    parser.add_argument("--set", nargs="+", action="extend", default=[], metavar="SECTION.KEY=VALUE",
                        help="override one value, e.g. --set data.normalization=he (applied after --config)")


def from_args(args):
    return config.load_config(args.config, args.set)
