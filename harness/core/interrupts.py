"""SIGINT and SIGTERM for the command line: raised where the tool can clean up, held where it cannot.

The CLI installs one handler for both signals (install). Where it lets them through
(`released`, around the command's own work) a signal raises KeyboardInterrupt (SIGINT) or
Terminated (SIGTERM) at once, and the CLI removes its temporary files and exits 130 / 143.
Everywhere else, and inside `held` sections within the work, a signal is only recorded:
- framework imports: a KeyboardInterrupt inside `import mindspore` leaves MindSpore half
  initialised (ImportError "initialization failed", or "Fatal Python error: PyThreadState_Get"
  at exit, return code -6);
- the renames that put an output set in place (harness.core.formats.atomic.OutputSet);
- error reporting, and the end of the process (`finish`: exit handlers, then os._exit, so no
  signal can meet the interpreter's own teardown, where Python has put the default handlers
  back and a signal kills the process: return code -2 / -15).
A signal recorded inside a `held` section within `released` is raised when the section ends.
A second signal while the first is held (an import that hangs) ends the process at once, as an
interrupt (`on_second_signal`), except inside `held(firm=True)` (the renames of an output set).

As a process (`python -m harness`: install(process=True), before any other thread exists), the
two signals are also blocked in every thread, and one thread takes them (sigwaitinfo) and hands
them to the main thread's handler (_thread.interrupt_main). So no library's own handler ever
runs: MindSpore installs one for SIGINT at its first operation, and again in its exit cleanup,
that sends the process SIGTERM (Ctrl-C would read as SIGTERM, exit 143), and threads a library
starts cannot take the signal away from the main thread. Where the signal is let through (or is
a second one), the taking thread also sends the main thread a wake-up signal (_WAKE, a real-time
signal with an empty handler), again every 10 ms until the handler has run (_wake_main), so a
blocking system call there ends (EINTR) and the interrupt is raised, as a signal delivered to the
main thread would do. Child processes (the kernel's g++)
inherit the block: a terminal's Ctrl-C lets a running compile finish (under a second), then
the tool stops.

Only the main thread handles signals: elsewhere these functions change nothing.
"""
from __future__ import annotations

import _thread
import atexit
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from typing import NoReturn

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so the same cleanup runs."""


_installed = False
_depth = 0                   # > 0: signals are recorded, not raised
_pending: int | None = None  # the first signal recorded and not raised yet
_taker: threading.Thread | None = None   # the thread that takes the blocked signals (process mode)
_finishing = False           # finish() has sent the taker its last signal
_firm = 0                    # > 0: inside held(firm=True), where not even a second signal stops the process
_abort: Callable[[KeyboardInterrupt], int] | None = None   # on_second_signal's report
_WAKE = signal.SIGRTMIN + 3  # the taker's wake-up call to the main thread (process mode)
_handled = 0                 # times _handler has run (the taker wakes the main thread until it has)
WAKE_EVERY_S = 0.01          # the taker's wake-up calls: every 10 ms ...
WAKE_FOR_S = 2.0             # ... for at most 2 s (a main thread in C code that never checks for signals)


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def exception(signum: int) -> KeyboardInterrupt:
    return Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def describe(exc: BaseException) -> tuple[str, int]:
    """(signal name, exit code) of an interrupt: ("SIGTERM", 143) or ("SIGINT", 130)."""
    return ("SIGTERM", 143) if isinstance(exc, Terminated) else ("SIGINT", 130)


def _handler(signum, frame) -> None:
    global _pending, _handled
    _handled += 1
    if _depth:
        if _pending is None:
            _pending = signum
        elif _abort is not None and not _firm:      # a second signal while the first waits: stop now
            _exit(_abort(exception(_pending)))
        return
    raise exception(signum)


def on_second_signal(report: Callable[[KeyboardInterrupt], int]) -> None:
    """Process mode: a second signal while one is held calls report(the first interrupt) (it removes
    the temporary files and prints the message) and ends the process with its code."""
    global _abort
    _abort = report


def _exit(code: int) -> NoReturn:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass
    os._exit(code)


def installed() -> bool:
    return _installed


def install(process: bool = False) -> dict | None:
    """Install the tool's handler for SIGINT and SIGTERM, signals held until `released`. Returns
    the previous handlers (for restore), or None if the tool's were in place already or this is
    not the main thread. process=True (once, first thing in the process, never restored): the
    signals are blocked in every thread and taken by one waiting thread (see above)."""
    global _installed, _depth
    if not _main_thread() or _installed:
        return None
    previous = {sig: signal.signal(sig, _handler) for sig in SIGNALS}
    _installed, _depth = True, 1
    if process:
        global _taker
        signal.signal(_WAKE, _wake)
        signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)   # inherited by every thread started from now on
        _taker = threading.Thread(target=_take_signals, name="harness-signals", daemon=True)
        _taker.start()
    return previous


def _take_signals() -> None:
    me, main, handed = os.getpid(), threading.main_thread().ident, 0
    while True:
        info = signal.sigwaitinfo(SIGNALS)
        if _finishing and info.si_pid == me:
            return                                   # finish()'s own: every signal before it has been handed on
        wake = _depth == 0 or handed > 0             # let through, or not the first (the main thread may be stuck)
        handed += 1
        seen = _handled
        _thread.interrupt_main(info.si_signo)        # runs _handler in the main thread
        if wake:
            _wake_main(main, seen)                   # a blocking call there ends, and the handler runs


def _wake_main(main: int, seen: int) -> None:
    """Send the main thread the wake-up signal until its handler has run (_handled past `seen`), every
    WAKE_EVERY_S for at most WAKE_FOR_S. One call is not enough: the main thread hands this thread the
    GIL on its way into a blocking call (time.sleep, a lock), after its last check for signals and
    before the system call itself, so a single wake-up can land in between and be lost (measured:
    about one run in two, a SIGTERM while the streamed expander slept in a callback)."""
    deadline = time.monotonic() + WAKE_FOR_S
    while True:
        signal.pthread_kill(main, _WAKE)
        if _handled > seen or time.monotonic() > deadline:
            return
        time.sleep(WAKE_EVERY_S)


def _wake(signum, frame) -> None:
    """The wake-up signal's handler: nothing (the signal only ends a blocking call in the main thread)."""


def restore(previous: dict) -> None:
    """Put back the handlers install() replaced; a signal recorded meanwhile is dropped."""
    global _installed, _depth, _pending
    for sig, handler in previous.items():
        signal.signal(sig, handler)
    _installed, _depth, _pending = False, 0, None


def pending() -> int | None:
    return _pending


def _raise_pending() -> None:
    global _pending
    if _pending is not None and _installed and _depth == 0:
        signum, _pending = _pending, None
        raise exception(signum)


@contextmanager
def held(firm: bool = False):
    """Signals are recorded inside; one that came is raised when the section ends, where
    signals are let through (inside `released`). firm: not even a second signal ends the process
    inside (a section that must not stop half way)."""
    global _depth, _firm
    if not _main_thread():
        yield
        return
    _depth += 1
    _firm += firm
    try:
        yield
    finally:
        _depth -= 1
        _firm -= firm
    _raise_pending()


@contextmanager
def released():
    """Signals raise at once inside (except in nested `held` sections); one recorded before is raised first."""
    global _depth
    if not _main_thread():
        yield
        return
    saved, _depth = _depth, 0
    try:
        _raise_pending()
        yield
    finally:
        _depth = saved


def _record_blocked() -> None:
    """Record the signals still waiting (blocked, not taken) and any the taker handed on."""
    global _pending
    while True:
        info = signal.sigtimedwait(SIGNALS, 0)
        if info is None:
            break
        if _pending is None:
            _pending = info.si_signo
    pending()   # a Python call: a handler the taker triggered runs here at the latest


def finish(code: int, on_signal: Callable[[KeyboardInterrupt], int]) -> NoReturn:
    """End the process with `code`, signals held: run the exit handlers, flush stdout and stderr,
    then os._exit (the interpreter's teardown, where a signal would kill the process, never
    runs). A signal that came after a successful run ends it as an interrupt:
    on_signal(the interrupt) prints the message and gives the exit code."""
    global _depth, _finishing
    _depth += 1
    try:
        atexit._run_exitfuncs()
    except BaseException:   # an exit handler's own failure does not change the outcome
        pass
    if _taker is not None and _taker.is_alive():
        _finishing = True
        signal.pthread_kill(_taker.ident, signal.SIGINT)   # to the taker alone: it hands on what it has, and ends
        _taker.join()
        _record_blocked()
    if _pending is not None and code == 0:
        code = on_signal(exception(_pending))
    _exit(code)


def native(module: str):
    """importlib.import_module(module), SIGINT / SIGTERM held until it is done: interrupted, a
    framework's native initialisation fails, or crashes the process at exit."""
    import importlib
    with held():
        return importlib.import_module(module)
