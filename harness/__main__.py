import sys

from harness.core import interrupts

interrupts.install(process=True)   # first: from here to the exit, SIGINT / SIGTERM end the run as 130 / 143

from harness.cli import main, report_interrupt  # noqa: E402

interrupts.on_second_signal(report_interrupt)

try:
    code = main()
except SystemExit as e:   # argparse: --help (0) or a usage error (2, message printed)
    code = e.code if isinstance(e.code, int) else 0 if e.code is None else 1
    if isinstance(e.code, str):
        print(e.code, file=sys.stderr)
interrupts.finish(code, report_interrupt)
