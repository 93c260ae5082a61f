"""Extract data/austen/*.txt from Debian's r-cran-janeaustenr package (Jane Austen's six completed
novels as R character vectors, one line of the printed text each), with the standard library only.

    apt-get download r-cran-janeaustenr && dpkg-deb -x r-cran-janeaustenr_*.deb pkg
    python tools/extract_austen.py pkg/usr/lib/R/site-library/janeaustenr/data data/austen

Run once to make the committed files (the project never runs it): the data/Rdata.rdx index (gzip,
R's XDR serialization) gives each novel's (offset, length) in Rdata.rdb, where each record is a
4-byte length and a zlib stream of one serialized character vector. Lines are joined into
paragraphs (a blank line ends one), one paragraph per output line.
"""
from __future__ import annotations

import gzip
import struct
import sys
import zlib
from pathlib import Path


class _Reader:
    """R's XDR serialization (format 2 or 3): only the types these files hold."""

    def __init__(self, data: bytes):
        self.b, self.p = data, 0

    def int(self) -> int:
        (v,) = struct.unpack(">i", self.b[self.p:self.p + 4])
        self.p += 4
        return v

    def read(self):
        if self.b[:2] != b"X\n":
            raise ValueError("not an XDR-serialized R object")
        self.p = 2
        version = self.int()
        self.int()                 # R version, minimal R version
        self.int()
        if version == 3:
            n = self.int()         # the native encoding's name
            self.p += n
        return self.item()

    def item(self):
        flags = self.int()
        kind, attr, tag = flags & 0xFF, flags & (1 << 9), flags & (1 << 10)
        if kind == 254:            # NILVALUE
            return None
        if kind == 9:              # CHARSXP
            n = self.int()
            if n == -1:
                return None
            text = self.b[self.p:self.p + n].decode("utf-8")
            self.p += n
            return text
        if kind == 1:              # SYMSXP
            return ("sym", self.item())
        if kind == 255:            # REFSXP
            return ("ref", flags >> 8)
        if kind in (10, 13, 14, 16, 19):   # logical, integer, double, character, list
            n = self.int()
            if kind in (16, 19):
                values = [self.item() for _ in range(n)]
            else:
                fmt, size = ("d", 8) if kind == 14 else ("i", 4)
                values = list(struct.unpack(f">{n}{fmt}", self.b[self.p:self.p + size * n]))
                self.p += size * n
            return (kind, values, self.item() if attr else None)
        if kind == 2:              # LISTSXP (attributes)
            attributes = self.item() if attr else None
            name = self.item() if tag else None
            return ("pair", name, self.item(), self.item(), attributes)
        raise ValueError(f"R type {kind} at byte {self.p} is not handled")


def paragraphs(lines: list[str | None]) -> list[str]:
    out, current = [], []
    for line in lines:
        line = (line or "").strip()
        if line:
            current.append(line)
        elif current:
            out.append(" ".join(current))
            current = []
    if current:
        out.append(" ".join(current))
    return out


def main(src: Path, dst: Path) -> None:
    index = _Reader(gzip.decompress((src / "Rdata.rdx").read_bytes())).read()
    variables = index[1][0]
    names = variables[2][2][1]
    rdb = (src / "Rdata.rdb").read_bytes()
    dst.mkdir(parents=True, exist_ok=True)
    for name, (_, (offset, length), _) in zip(names, variables[1], strict=True):
        lines = _Reader(zlib.decompress(rdb[offset + 4:offset + length])).read()[1]
        text = "\n".join(paragraphs(lines)) + "\n"
        (dst / f"{name}.txt").write_text(text, encoding="utf-8")
        print(f"{name}: {len(lines)} lines, {len(text):,} characters")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
