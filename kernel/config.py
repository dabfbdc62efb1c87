"""Turning a plugin's registry `config` table into a validated attrs object."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, get_args, get_origin

import attrs
import cattrs
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError

from kernel.errors import ConfigError
from kernel.hookspecs import hookimpl

if TYPE_CHECKING:
    from kernel.app import Application

T = TypeVar("T")
ConfigT = TypeVar("ConfigT")


def _strict(kind: type, name: str) -> Any:
    def structure(value: Any, _: Any) -> Any:
        # bool is an int subclass: never accept it where a number is expected.
        if isinstance(value, bool) and kind is not bool:
            raise TypeError(f"expected {name}, got a boolean")
        if kind is float and isinstance(value, int):
            return float(value)
        if not isinstance(value, kind):
            raise TypeError(f"expected {name}, got {type(value).__name__} {value!r}")
        return value

    return structure


def _is_literal(kind: Any) -> bool:
    return get_origin(kind) is Literal


def _literal(value: Any, kind: Any) -> Any:
    allowed = get_args(kind)
    if value not in allowed or isinstance(value, bool) != any(isinstance(a, bool) for a in allowed):
        raise ValueError(f"expected one of {', '.join(repr(a) for a in allowed)}, got {value!r}")
    return value


def _converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True)
    for kind, name in ((str, "a string"), (int, "an integer"), (float, "a number"), (bool, "true or false")):
        converter.register_structure_hook(kind, _strict(kind, name))
    converter.register_structure_hook_func(_is_literal, _literal)
    return converter


_CONVERTER = _converter()


def _messages(exc: BaseException, path: str = "") -> list[tuple[str, str]]:
    """Flatten a cattrs error tree into (dotted key, message) pairs."""
    if isinstance(exc, ForbiddenExtraKeysError):
        return [(_join(path, key), "unknown key") for key in sorted(exc.extra_fields)]
    if isinstance(exc, ClassValidationError | cattrs.IterableValidationError):
        with_notes, without_notes = exc.group_exceptions()
        found: list[tuple[str, str]] = []
        for inner, note in with_notes:
            found += _messages(inner, _join(path, _note_key(note)))
        for inner in without_notes:
            found += _messages(inner, path)
        return found
    if isinstance(exc, KeyError):
        return [(path, "required key is missing")]
    return [(path, str(exc) or type(exc).__name__)]


def _note_key(note: Any) -> str:
    name = getattr(note, "name", None)
    if name is not None:
        return str(name)
    index = getattr(note, "index", None)
    return f"[{index}]" if index is not None else ""


def _join(path: str, key: str) -> str:
    if not key:
        return path
    if key.startswith("["):
        return path + key
    return f"{path}.{key}" if path else key


def parse_config(cls: type[T], raw: Mapping[str, Any]) -> T:
    """Build `cls` (an attrs class) from `raw`, strictly: unknown keys, missing
    keys and wrong types raise `ConfigError` naming the first bad key; attrs
    validators run as usual (their `ValueError` message is shown)."""
    try:
        return _CONVERTER.structure(dict(raw), cls)
    except (ClassValidationError, ForbiddenExtraKeysError) as exc:
        key, message = _messages(exc)[0]
        raise ConfigError(key, message) from None
    except (TypeError, ValueError) as exc:
        # attrs validators pass the failing attribute as their second argument.
        attribute = exc.args[1] if len(exc.args) > 1 else None
        key = attribute.name if isinstance(attribute, attrs.Attribute) else ""
        raise ConfigError(key, str(exc.args[0]) if key else str(exc)) from None


class ConfiguredPlugin(Generic[ConfigT]):
    """Base class for a plugin whose registry `config` table is an attrs class.

    Set `config_class`: the plugin's section is parsed strictly into
    `self.config` (defaults until then) and the application is kept as
    `self.app`. Override `configured()` for work that needs the parsed config.
    """

    config_class: type[ConfigT]

    def __init__(self) -> None:
        self.config: ConfigT = self.config_class()
        self._app: Application | None = None

    @property
    def app(self) -> Application:
        if self._app is None:
            raise RuntimeError(f"{type(self).__name__} is not configured yet")
        return self._app

    @hookimpl
    def wasmkernel_configure(self, config: Mapping[str, Any], app: Application) -> None:
        self.config = parse_config(self.config_class, config)
        self._app = app
        self.configured()

    def configured(self) -> None:
        """Called once `self.config` and `self.app` are set."""
