"""A WASI call's scratch directory as the host prepares and reads it: the
request body in a named file (`body_file`), the response body from a named
file (`output_file`), and the `/dev` files a module is granted (`devices`).

Everything in the directory may have been written by the guest: the output
file is opened without following any symlink, must be a regular file and is
read up to a bound."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import PurePosixPath

#: The device files a module may be granted, served from the call's `dev`
#: directory mapped at `/dev`: `null` an empty writable file, `urandom` this
#: many fresh random bytes (a read past them sees end of file).
DEVICES = ("null", "urandom")
URANDOM_BYTES = 64 * 1024


class ScratchFileError(Exception):
    """The named output file is missing, not a regular file, or too large."""


def relative_part(guest_path: str, scratch: str) -> PurePosixPath:
    """`guest_path` relative to the `scratch` grant; `ValueError` unless it is
    a file below it (absolute, no `..`, `.` or empty segment)."""
    path, root = PurePosixPath(guest_path), PurePosixPath(scratch)
    if not guest_path.startswith("/") or any(part in ("..", ".") for part in guest_path.split("/")[1:]) or "//" in guest_path:
        raise ValueError(f"expected an absolute guest path without '.', '..' or empty segments, got {guest_path!r}")
    try:
        relative = path.relative_to(root)
    except ValueError:
        raise ValueError(f"{guest_path!r} is not below the module's scratch directory {scratch!r}") from None
    if not relative.parts:
        raise ValueError(f"{guest_path!r} is the scratch directory itself; name a file in it")
    return relative


def prepare_scratch(call_dir: str, body: bytes, body_file: PurePosixPath | None, devices: Iterable[str]) -> None:
    """Create the call's `tmp` (the scratch grant) with the body in `body_file`,
    and its `dev` directory with the granted `devices`."""
    tmp = os.path.join(call_dir, "tmp")
    os.makedirs(tmp, exist_ok=True)
    if body_file is not None:
        target = os.path.join(tmp, *body_file.parts)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as file:
            file.write(body)
    granted = set(devices)
    if granted:
        dev = os.path.join(call_dir, "dev")
        os.mkdir(dev)
        for name in granted:
            with open(os.path.join(dev, name), "wb") as file:
                file.write(os.urandom(URANDOM_BYTES) if name == "urandom" else b"")


def read_output(call_dir: str, output_file: PurePosixPath, limit: int) -> bytes:
    """The guest-written `output_file` below the call's `tmp`, opened segment by
    segment without following symlinks; `ScratchFileError` if it is missing,
    not a regular file or over `limit` bytes."""
    fds: list[int] = []
    try:
        fds.append(os.open(os.path.join(call_dir, "tmp"), os.O_RDONLY | os.O_DIRECTORY))
        *folders, name = output_file.parts
        for folder in folders:
            fds.append(os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fds[-1]))
        fds.append(os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fds[-1]))
        if not stat.S_ISREG(os.fstat(fds[-1]).st_mode):
            raise ScratchFileError(f"its output file {output_file} is not a regular file")
        data = os.read(fds[-1], limit + 1)
        chunks = [data]
        while data and sum(map(len, chunks)) <= limit:
            data = os.read(fds[-1], limit + 1)
            chunks.append(data)
        output = b"".join(chunks)
        if len(output) > limit:
            raise ScratchFileError(f"its output file {output_file} is over {limit} bytes")
        return output
    except OSError as exc:
        raise ScratchFileError(f"its output file {output_file} cannot be read ({os.strerror(exc.errno or 0)})") from None
    finally:
        for fd in fds:
            os.close(fd)
