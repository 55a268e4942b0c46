"""Read an input file (a spec, a snapshot) safely: regular files only, with a size limit, as UTF-8 text.

A FIFO or a character device (``/dev/zero``, ``/dev/urandom``) would block or never end, a directory is no
file, and compressed or UTF-16 bytes are not text: each is refused with a message that names the file, in
bounded time and memory.
"""

from __future__ import annotations

import os
import stat


class InputFileError(ValueError):
    """The file cannot be used as input; ``reason`` says why (without the file name)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def read_bytes(path: str | os.PathLike[str], limit: int, what: str = "file") -> bytes:
    """The whole file, or :class:`InputFileError`. Opening never blocks (``O_NONBLOCK``) and at most
    ``limit + 1`` bytes are read."""
    name = str(path)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise InputFileError(name, "no such file") from None
    except PermissionError:
        raise InputFileError(name, "not readable: permission denied") from None
    except IsADirectoryError:
        raise InputFileError(name, f"is a directory, not a {what}") from None
    except OSError as exc:
        raise InputFileError(name, f"cannot open: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InputFileError(name, f"is {_kind(st.st_mode)}, not a {what}: only regular files are read")
        if st.st_size > limit:
            raise InputFileError(name, f"too large for a {what} ({st.st_size} bytes; the limit is {limit})")
        chunks, total = [], 0
        while total <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:
            raise InputFileError(name, f"too large for a {what} (over {limit} bytes)")
        return b"".join(chunks)
    except OSError as exc:
        raise InputFileError(name, f"cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def decode_text(data: bytes, name: str, what: str = "file") -> str:
    """UTF-8 text (a BOM is allowed), or :class:`InputFileError` saying what the bytes look like."""
    if data[:2] == b"\x1f\x8b":
        raise InputFileError(name, f"is gzip-compressed, not a {what}; decompress it first (gunzip)")
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise InputFileError(name, f"is UTF-16 text; a {what} must be UTF-8 (iconv -f UTF-16 -t UTF-8)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputFileError(
            name, f"not UTF-8 text (bad byte at offset {exc.start}): is it a binary or compressed file?"
        ) from None
    if "\x00" in text:
        raise InputFileError(name, f"holds NUL bytes: binary data (or UTF-16 without a BOM), not a {what}")
    return text
