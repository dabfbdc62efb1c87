"""`wasi:filesystem`: only the directories the registry grants, read-only unless `writable`.

`get-directories` lists the component's `dirs` (guest path -> host
directory). Every path a guest names is resolved (symbolic links included)
and must stay inside the granted directory it was opened from: anything
else is `not-permitted`. Writing, creating, truncating, removing or renaming
under a read-only grant is `read-only`. Hard and symbolic links cannot be
made (`unsupported`), nor times set.
"""

from __future__ import annotations

import errno
import os
import stat as stat_mode
from pathlib import Path
from typing import Any

import attrs
from wasmtime.component import ResourceAny, ResourceHost

from wasmkernel_components.call import current
from wasmkernel_components.interface import Interface
from wasmkernel_components.values import Err, Ok, Some
from wasmkernel_components.wasi.io import INPUT, OUTPUT, Closed, Failed, InputStream, OutputStream

DESCRIPTOR = "wasi:filesystem/types#descriptor"
ENTRIES = "wasi:filesystem/types#directory-entry-stream"
#: The most one `read` returns.
MAX_READ = 1 << 20
_ERRNO = {
    errno.EACCES: "access",
    errno.EPERM: "not-permitted",
    errno.EEXIST: "exist",
    errno.ENOENT: "no-entry",
    errno.ENOTDIR: "not-directory",
    errno.EISDIR: "is-directory",
    errno.ENOTEMPTY: "not-empty",
    errno.ENAMETOOLONG: "name-too-long",
    errno.ELOOP: "loop",
    errno.ENOSPC: "insufficient-space",
    errno.EDQUOT: "quota",
    errno.EFBIG: "file-too-large",
    errno.EINVAL: "invalid",
    errno.EROFS: "read-only",
    errno.EXDEV: "cross-device",
    errno.EBADF: "bad-descriptor",
}


class FsError(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@attrs.define(eq=False)
class Descriptor:
    """An open directory or file under a granted root."""

    root: Path
    path: Path
    writable: bool
    fd: int | None = None

    def is_dir(self) -> bool:
        return self.path.is_dir()

    def dropped(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


@attrs.define(eq=False)
class Entries:
    names: list[tuple[str, str]]


def _code(exc: OSError) -> Err:
    return Err(_ERRNO.get(exc.errno or 0, "io"))


def _inside(root: Path, path: Path) -> bool:
    return path == root or root in path.parents


def _resolve(base: Descriptor, name: str, follow: bool = True) -> Path:
    """The host path of `name` under `base`, which must stay inside its granted root."""
    if not base.is_dir():
        raise FsError("not-directory")
    if name.startswith("/") or "\0" in name:
        raise FsError("not-permitted")
    joined = base.path / name
    # Without following, only the last component is taken as it is, unless it is ".." (a step up, never a name).
    last = joined.name
    resolved = Path(os.path.realpath(joined)) if follow or last in ("", ".", "..") else Path(os.path.realpath(joined.parent)) / last
    if not _inside(base.root, resolved):
        raise FsError("not-permitted")
    return resolved


def _writable(base: Descriptor) -> None:
    if not base.writable:
        raise FsError("read-only")


def _kind(mode: int) -> str:
    if stat_mode.S_ISDIR(mode):
        return "directory"
    if stat_mode.S_ISREG(mode):
        return "regular-file"
    if stat_mode.S_ISLNK(mode):
        return "symbolic-link"
    return "unknown"


def _time(ns: int) -> Some:
    return Some({"seconds": ns // 1_000_000_000, "nanoseconds": ns % 1_000_000_000})


def _stat(info: os.stat_result) -> dict[str, Any]:
    return {
        "type": _kind(info.st_mode),
        "link-count": info.st_nlink,
        "size": info.st_size,
        "data-access-timestamp": _time(info.st_atime_ns),
        "data-modification-timestamp": _time(info.st_mtime_ns),
        "status-change-timestamp": _time(info.st_ctime_ns),
    }


def _descriptor(store: Any, handle: ResourceAny) -> Descriptor:
    return current().table.get(store, handle, DESCRIPTOR, Descriptor)


def _guarded(function: Any) -> Any:
    """`function(descriptor, *args)` answering `Ok(value)`; `FsError`/`OSError` become `Err(error-code)`."""

    def host(store: Any, handle: ResourceAny, *args: Any) -> Ok | Err:
        try:
            return Ok(function(_descriptor(store, handle), *args))
        except FsError as exc:
            return Err(exc.code)
        except OSError as exc:
            return _code(exc)

    return host


def _file_fd(base: Descriptor) -> int:
    if base.fd is None:
        raise FsError("is-directory" if base.is_dir() else "bad-descriptor")
    return base.fd


def _open_at(base: Descriptor, path_flags: set[str], name: str, open_flags: set[str], flags: set[str]) -> ResourceHost:
    target = _resolve(base, name, "symlink-follow" in path_flags)
    writing = bool({"write", "mutate-directory"} & flags) or bool({"create", "truncate"} & open_flags)
    if writing:
        _writable(base)
    if "directory" in open_flags or target.is_dir():
        if "directory" in open_flags and not target.is_dir():
            raise FsError("not-directory")
        if "create" in open_flags and "exclusive" in open_flags:
            raise FsError("exist")
        return current().table.new(DESCRIPTOR, Descriptor(base.root, target, base.writable))
    mode = os.O_RDWR if "write" in flags and "read" in flags else os.O_WRONLY if "write" in flags else os.O_RDONLY
    mode |= os.O_NOFOLLOW | (os.O_CREAT if "create" in open_flags else 0) | (os.O_EXCL if "exclusive" in open_flags else 0)
    mode |= os.O_TRUNC if "truncate" in open_flags else 0
    fd = os.open(target, mode | getattr(os, "O_CLOEXEC", 0), 0o644)
    return current().table.new(DESCRIPTOR, Descriptor(base.root, target, base.writable and "write" in flags, fd))


def _open_fd(file: Descriptor) -> int:
    """The descriptor's file, for a stream: `Failed` once the descriptor was dropped
    (its number may already name another call's file)."""
    if file.fd is None:
        raise Failed("the file's descriptor was dropped")
    return file.fd


class FileSource:
    def __init__(self, file: Descriptor, offset: int) -> None:
        self.file, self.offset = file, offset

    def readable(self) -> bool:
        return True

    def read(self, size: int) -> bytes:
        try:
            data = os.pread(_open_fd(self.file), min(size, MAX_READ), self.offset)
        except OSError as exc:
            raise Failed(str(exc.strerror)) from None
        if not data and size:
            raise Closed
        self.offset += len(data)
        return data


class FileSink:
    def __init__(self, file: Descriptor, offset: int | None) -> None:
        self.file, self.offset = file, offset

    def writable(self) -> bool:
        return True

    def capacity(self) -> int:
        _open_fd(self.file)
        return MAX_READ

    def write(self, data: bytes) -> None:
        try:
            if self.offset is None:
                os.write(_open_fd(self.file), data)
            else:
                os.pwrite(_open_fd(self.file), data, self.offset)
                self.offset += len(data)
        except OSError as exc:
            raise Failed(str(exc.strerror)) from None


def _read_via_stream(base: Descriptor, offset: int) -> ResourceHost:
    _file_fd(base)
    return current().table.new(INPUT, InputStream(FileSource(base, offset)))


def _write_via_stream(base: Descriptor, offset: int | None) -> ResourceHost:
    _writable(base)
    fd = _file_fd(base)
    if offset is None:
        os.lseek(fd, 0, os.SEEK_END)
    return current().table.new(OUTPUT, OutputStream(FileSink(base, offset)))


def _read(base: Descriptor, length: int, offset: int) -> tuple[bytes, bool]:
    data = os.pread(_file_fd(base), min(length, MAX_READ), offset)
    return data, len(data) < min(length, MAX_READ)


def _write(base: Descriptor, data: bytes, offset: int) -> int:
    _writable(base)
    return os.pwrite(_file_fd(base), data, offset)


def _set_size(base: Descriptor, size: int) -> None:
    _writable(base)
    os.ftruncate(_file_fd(base), size)


def _read_directory(base: Descriptor) -> ResourceHost:
    if not base.is_dir():
        raise FsError("not-directory")
    names = []
    with os.scandir(base.path) as found:
        for entry in found:
            names.append((entry.name, _kind(entry.stat(follow_symlinks=False).st_mode)))
    return current().table.new(ENTRIES, Entries(sorted(names)))


def _next_entry(store: Any, handle: ResourceAny) -> Ok:
    entries = current().table.get(store, handle, ENTRIES, Entries)
    if not entries.names:
        return Ok(None)
    name, kind = entries.names.pop(0)
    return Ok(Some({"type": kind, "name": name}))


def _change(action: Any) -> Any:
    def change(base: Descriptor, name: str, *rest: Any) -> None:
        _writable(base)
        target = _resolve(base, name, follow=False)
        if target == base.root:  # the grant itself is not the guest's to remove or replace
            raise FsError("not-permitted")
        action(target, *rest)

    return change


def _stat_at(base: Descriptor, flags: set[str], name: str) -> dict[str, Any]:
    return _stat(os.stat(_resolve(base, name, "symlink-follow" in flags), follow_symlinks=False))


def _hash(info: os.stat_result) -> dict[str, int]:
    return {"lower": info.st_ino, "upper": info.st_dev}


def _unsupported(store: Any, handle: ResourceAny, *args: Any) -> Err:
    _descriptor(store, handle)
    return Err("unsupported")


def _preopens(store: Any) -> list[tuple[ResourceHost, str]]:
    call = current()
    return [(call.table.new(DESCRIPTOR, Descriptor(Path(host), Path(host), writable)), guest) for host, guest, writable in call.state.get("dirs", ())]


def _same(store: Any, handle: ResourceAny, other: ResourceAny) -> bool:
    one, two = _descriptor(store, handle), _descriptor(store, other)
    return os.path.samefile(one.path, two.path)


INTERFACES = {
    "wasi:filesystem/preopens": Interface({}, {"get-directories": _preopens}),
    "wasi:filesystem/types": Interface(
        {"descriptor": Descriptor, "directory-entry-stream": Entries},
        {
            "[method]descriptor.read-via-stream": _guarded(_read_via_stream),
            "[method]descriptor.write-via-stream": _guarded(_write_via_stream),
            "[method]descriptor.append-via-stream": _guarded(lambda base: _write_via_stream(base, None)),
            "[method]descriptor.advise": _guarded(lambda base, *args: None),
            "[method]descriptor.sync-data": _guarded(lambda base: None),
            "[method]descriptor.sync": _guarded(lambda base: None),
            "[method]descriptor.get-flags": _guarded(lambda base: {"read", "write", "mutate-directory"} if base.writable else {"read"}),
            "[method]descriptor.get-type": _guarded(lambda base: _kind(base.path.stat().st_mode)),
            "[method]descriptor.set-size": _guarded(_set_size),
            "[method]descriptor.set-times": _unsupported,
            "[method]descriptor.set-times-at": _unsupported,
            "[method]descriptor.read": _guarded(_read),
            "[method]descriptor.write": _guarded(_write),
            "[method]descriptor.read-directory": _guarded(_read_directory),
            "[method]descriptor.create-directory-at": _guarded(_change(lambda path: path.mkdir())),
            "[method]descriptor.stat": _guarded(lambda base: _stat(os.stat(base.path))),
            "[method]descriptor.stat-at": _guarded(_stat_at),
            "[method]descriptor.link-at": _unsupported,
            "[method]descriptor.symlink-at": _unsupported,
            "[method]descriptor.readlink-at": _unsupported,
            "[method]descriptor.rename-at": _unsupported,
            "[method]descriptor.open-at": _guarded(_open_at),
            "[method]descriptor.remove-directory-at": _guarded(_change(lambda path: path.rmdir())),
            "[method]descriptor.unlink-file-at": _guarded(_change(lambda path: path.unlink())),
            "[method]descriptor.is-same-object": _same,
            "[method]descriptor.metadata-hash": _guarded(lambda base: _hash(os.stat(base.path))),
            "[method]descriptor.metadata-hash-at": _guarded(lambda base, flags, name: _hash(os.stat(_resolve(base, name, "symlink-follow" in flags)))),
            "[method]directory-entry-stream.read-directory-entry": _next_entry,
            "filesystem-error-code": lambda store, handle: None,
        },
    ),
}
