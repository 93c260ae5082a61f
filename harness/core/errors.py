"""The tool's own error type: what went wrong, and how to fix it."""


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
