"""The atomic rules every file the tool writes follows: a temporary name beside the final one,
fsync, rename; the output folder of a command changed as one unit (OutputSet).

    tmp = temp_beside(final)       # .NAME.PID.RANDOM.partial: the pid lets a later run remove it
    ...write tmp...                # if the process dies, stale temporaries are removed next time
    commit(tmp, final)             # fsync, rename, fsync the folder (inside an OutputSet: staged)
    discard(tmp)                   # on an error or an interrupt

A failed or interrupted run leaves no partial file under a final name, and with an OutputSet
the folder holds all the earlier files or all the new ones.
"""
from __future__ import annotations

import glob
import os
import secrets
import shutil
from pathlib import Path

from harness.core import interrupts
from harness.core.errors import BadInput, file_kind


def _temp_prefix(final: Path) -> str:
    return f".{final.name}."


def remove_stale_temps(final: Path) -> list[Path]:
    """Remove temporary files of `final` left by runs that died (SIGKILL, power loss).

    Temporary names carry the writer's pid: `.NAME.PID.RANDOM.partial...`; a file whose
    pid is not a running process is stale (a live writer's file is left alone).
    """
    removed = []
    prefix = _temp_prefix(final)
    for path in Path(final).parent.glob(f"{glob.escape(prefix)}*.partial*"):
        pid = path.name[len(prefix):].split(".", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
            continue                                   # alive (or another user's): not ours to remove
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        discard(path)
        removed.append(path)
    return removed


_LIVE: set[Path] = set()   # temporary files of this process not yet renamed or removed


def discard_live() -> list[Path]:
    """Remove every temporary file this process created and has not finished (the CLI calls it
    on Ctrl-C / SIGTERM: an interrupt may land between a file's creation and the `with` that
    would remove it)."""
    removed = []
    for tmp in list(_LIVE):
        discard(tmp)
        removed.append(tmp)
    return removed


def temp_beside(final: Path, folder: bool = False) -> Path:
    """A new empty temporary file (or folder) beside `final`, named after it and this process's
    pid and keeping its suffix (MindSpore appends .ckpt otherwise); stale temporaries of dead
    writers of `final` are removed first. The name is registered (see discard_live) before
    it exists, so no interrupt can leave it unregistered."""
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(final)
    while True:
        tmp = final.parent / f"{_temp_prefix(final)}{os.getpid()}.{secrets.token_hex(4)}.partial{final.suffix}"
        _LIVE.add(tmp)
        try:
            if folder:
                os.mkdir(tmp, 0o700)
            else:
                os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            return tmp
        except FileExistsError:
            _LIVE.discard(tmp)
        except BaseException:
            discard(tmp)
            raise


def as_bad_input(error: OSError, final: Path, tmp: Path | None) -> BadInput:
    """An OSError while writing `final` (folder not writable, disk full) as the tool's error."""
    where = f" ({error.filename})" if error.filename and str(error.filename) not in (str(final), str(tmp)) else ""
    return BadInput(f"{final}: cannot write: {error.strerror or error}{where}",
                    "choose a writable output folder with enough free space, then rerun")


def commit(tmp: Path, final: Path) -> None:
    """fsync tmp, give it the mode any new file gets (0666 less the umask; temporaries are
    private), rename it to final and fsync the folder. A temporary folder (temp_beside(...,
    folder=True)) has each of its files so treated and replaces an earlier folder `final`: that
    one is renamed aside (a temporary name, removed as stale if we die) before the new one is
    renamed in, and only then removed, so one of the two is whole at every moment.
    Inside an OutputSet, a file of its folder is only fsynced here: the set renames it later."""
    umask = os.umask(0)
    os.umask(umask)
    for path in (tmp.iterdir() if tmp.is_dir() else (tmp,)):
        os.chmod(path, 0o666 & ~umask)
        with open(path, "rb+") as f:
            os.fsync(f.fileno())
    if _OUTPUT_SET is not None and _OUTPUT_SET.holds(tmp, final):
        _OUTPUT_SET.stage(tmp, final)          # renamed into place with the rest of the set
        return
    old = None
    if tmp.is_dir():
        os.chmod(tmp, 0o777 & ~umask)
        if final.is_dir():
            old = tmp.with_name(tmp.name + ".old")
            _LIVE.add(old)
            os.replace(final, old)
    try:
        os.replace(tmp, final)
    except BaseException:
        if old is not None:                    # put the earlier folder back
            os.replace(old, final)
            _LIVE.discard(old)
        raise
    _LIVE.discard(tmp)
    if old is not None:
        discard(old)
    dir_fd = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class OutputSet:
    """The files one command writes into one folder, changed as one unit: all the new files or
    all the earlier ones, never a mixture.

        with OutputSet(out_dir):     # checks out_dir before any work (created if missing)
            ...write files into out_dir (StreamWriter, checkpoint.atomic_path: commit)...

    Inside the `with`, commit() leaves each file of out_dir fsynced under its temporary name
    (staged; a file written twice keeps its last version). A normal exit renames them into place
    in the order written, signals held meanwhile (harness.core.interrupts); a rename that fails puts
    every earlier file back. Any error or interrupt removes the staged files, and a folder the
    set created. Files of out_dir this run does not write are never touched. During the renames
    each earlier file keeps a hard link beside it (`.NAME.PID.RANDOM.partial.old`), removed at the
    end: after a power loss or SIGKILL in those milliseconds, the files already renamed are new
    and the rest still old, and no file is lost."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.pending: dict[Path, Path] = {}    # final -> its staged temporary file, in write order
        self.created: list[Path] = []          # folders made for the set (removed if it fails)

    def holds(self, tmp: Path, final: Path) -> bool:
        return not tmp.is_dir() and os.path.abspath(final.parent) == os.path.abspath(self.folder)

    def stage(self, tmp: Path, final: Path) -> None:
        earlier = self.pending.pop(final, None)
        if earlier is not None and earlier != tmp:
            discard(earlier)
        self.pending[final] = tmp

    def __enter__(self) -> OutputSet:
        global _OUTPUT_SET
        if _OUTPUT_SET is not None:
            raise RuntimeError(f"an output set for {_OUTPUT_SET.folder} is open already")
        self._check()
        _OUTPUT_SET = self
        return self

    def __exit__(self, kind, exc, tb) -> None:
        global _OUTPUT_SET
        _OUTPUT_SET = None
        if kind is None:
            self._put_in_place()
        else:
            with interrupts.held():
                self._abandon()

    def _check(self) -> None:
        """The folder exists (made if missing) and takes a new file; else BadInput naming it."""
        folder = self.folder
        fix = "choose a writable folder for --out (it is created if missing), then rerun"
        kind = file_kind(folder)
        if kind not in ("missing", "a folder"):
            raise BadInput(f"{folder}: cannot be the output folder: it is {kind}", fix)
        try:
            missing = []
            level = folder
            while file_kind(level) == "missing" and level != level.parent:
                missing.append(level)
                level = level.parent
            for level in reversed(missing):
                os.mkdir(level)
                self.created.append(level)
            probe = temp_beside(folder / "write-check")   # the folder takes a new file
            discard(probe)
        except OSError as e:
            self._abandon()
            inside = e.filename and os.path.abspath(os.path.dirname(e.filename)) == os.path.abspath(folder)
            where = "" if not e.filename or inside or os.path.abspath(e.filename) == os.path.abspath(folder) \
                else f" ({e.filename})"                 # a folder above it, not the probe file in it
            raise BadInput(f"{folder}: cannot write there: {e.strerror or e}{where}", fix) from None
        except BaseException:
            self._abandon()
            raise

    def _abandon(self) -> None:
        for tmp in self.pending.values():
            discard(tmp)
        self.pending.clear()
        for level in reversed(self.created):
            try:
                os.rmdir(level)
            except OSError:
                break   # not empty (someone else's file) or gone
        self.created.clear()

    def _put_in_place(self) -> None:
        with interrupts.held(firm=True):
            done: list[tuple[Path, Path | None]] = []   # (final, link to its earlier file or None)
            final = self.folder
            try:
                for final, tmp in self.pending.items():
                    done.append((final, self._keep(final)))
                    os.replace(tmp, final)
                    _LIVE.discard(tmp)
            except BaseException as e:
                self._put_back(done)
                self._abandon()
                if isinstance(e, OSError):
                    raise as_bad_input(e, final, None) from None
                raise
            for _, kept in done:
                if kept is not None:
                    discard(kept)
            self.pending.clear()
            self.created.clear()
            dir_fd = os.open(self.folder, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    @staticmethod
    def _keep(final: Path) -> Path | None:
        """A hard link to the earlier file of `final` (None if there is none), to put it back if a
        later rename fails; where the file system has no hard links, a copy."""
        if not os.path.lexists(final):
            return None
        kept = final.parent / f"{_temp_prefix(final)}{os.getpid()}.{secrets.token_hex(4)}.partial.old"
        _LIVE.add(kept)
        try:
            try:
                os.link(final, kept, follow_symlinks=False)
            except OSError:
                shutil.copy2(final, kept, follow_symlinks=False)
        except BaseException:
            discard(kept)
            raise
        return kept

    @staticmethod
    def _put_back(done: list[tuple[Path, Path | None]]) -> None:
        """Undo the renames: each earlier file back under its name, a name that had none removed."""
        for final, kept in reversed(done):
            try:
                if kept is not None:
                    os.replace(kept, final)
                    discard(kept)   # still there if the rename never happened: a link to the same file
                else:
                    os.unlink(final)
            except OSError:
                pass


_OUTPUT_SET: OutputSet | None = None


def staged(final: Path) -> Path:
    """Where the file `final` is now: its staged temporary file inside an open OutputSet, else final."""
    if _OUTPUT_SET is not None:
        return _OUTPUT_SET.pending.get(Path(final), Path(final))
    return Path(final)


def discard(tmp: Path) -> None:
    """Remove a temporary file or folder, best effort (a folder that will not go entirely stays)."""
    try:
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            os.unlink(tmp)
    except FileNotFoundError:
        pass
    _LIVE.discard(tmp)
