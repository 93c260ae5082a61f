"""The tool's own error type: what went wrong, and how to fix it."""
import errno
import os
import stat


class BadInput(Exception):
    """Bad input from the user (file, config, option). The CLI exits with code 2.

    `what` names the file / tensor / config and what is wrong; `fix` says what to do.
    """

    exit_code = 2

    def __init__(self, what: str, fix: str = ""):
        self.what = what
        self.fix = fix
        super().__init__(what if not fix else f"{what}\n  fix: {fix}")


def one_line(text: object) -> str:
    """`text` (a message or an exception) on one line, runs of whitespace as one space."""
    return " ".join(str(text).split())


_KINDS = ((stat.S_ISREG, "a regular file"), (stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def file_kind(path) -> str:
    """What is at `path` (symbolic links followed), for checks and messages: "a regular file",
    "a folder", "missing", "a symbolic link loop", "a FIFO (named pipe)", "a character device",
    "a block device", "a socket", or "not reachable (why)" (a path through a file, no permission)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "missing"
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "a symbolic link loop"
        return f"not reachable ({e.strerror or e})"
    except ValueError as e:   # a NUL byte in the path
        return f"not reachable ({e})"
    return next((kind for test, kind in _KINDS if test(mode)), "not a regular file or folder")
