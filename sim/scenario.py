"""Loading a scenario: TOML with `extends`, then environment variables, then `--set` overrides.

Precedence, lowest first: the base files named by `extends` (deep-merged, nearest last), the
scenario file, `DEMINING_*` environment variables (`__` between nested keys), `--set key.path=value`.
Every problem becomes a one-line `UserError` naming the file or variable, the key path and the reason.
"""

from __future__ import annotations

import datetime as dt
import difflib
import os
import re
import tomllib
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsError
from typing_extensions import is_typeddict

from .config import ScenarioConfig, deep_merge, not_changeable_reason
from .errors import UserError

ENV_PREFIX = "DEMINING_"
# Environment variables of the command line, not of the scenario.
CLI_ENV = {"DEMINING_SCHEDULER", "DEMINING_WORKERS", "DEMINING_RESULTS"}
# A scenario extends a base that may extend another: a few levels in practice; a deep chain is a
# mistake (or generated), and would otherwise end in a RecursionError.
MAX_EXTENDS_DEPTH = 32


def _read_toml(path: Path) -> dict:
    try:
        if path.exists() and not path.is_dir() and not path.is_file():  # a FIFO or device: reading would block
            raise UserError("not a regular file", source=str(path))
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserError("scenario file not found", source=str(path)) from None
    except IsADirectoryError:
        raise UserError("is a folder, not a scenario file", source=str(path)) from None
    except OSError as exc:
        raise UserError(f"cannot read scenario file ({exc.strerror})", source=str(path)) from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise UserError("not UTF-8 text", source=str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"TOML syntax error: {exc}", source=str(path)) from None


def _leaf_origins(data: Mapping, origin: str, prefix: tuple = ()) -> dict[tuple, str]:
    out = {}
    for key, value in data.items():
        path = prefix + (key,)
        out[path] = origin
        if isinstance(value, Mapping):
            out.update(_leaf_origins(value, origin, path))
    return out


def read_scenario_file(path: Path, _chain: tuple[Path, ...] = ()) -> tuple[dict, dict[tuple, str]]:
    """The merged TOML of a scenario and its `extends` chain, and which file set each key."""
    path = Path(path)
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop (RuntimeError before Python 3.13)
        raise UserError(f"cannot read scenario file ({getattr(exc, 'strerror', None) or exc})", source=str(path)) from None
    if len(_chain) >= MAX_EXTENDS_DEPTH:
        raise UserError(f"extends: a chain deeper than {MAX_EXTENDS_DEPTH} files", source=str(path))
    if resolved in _chain:
        cycle = " -> ".join(str(p) for p in _chain + (resolved,))
        raise UserError(f"extends forms a cycle: {cycle}", source=str(path))
    data = _read_toml(path)
    parent = data.pop("extends", None)
    if parent is None:
        return data, _leaf_origins(data, str(path))
    if not isinstance(parent, str):
        raise UserError("extends: must be the path of a scenario file (a string)", source=str(path))
    parent_path = path.parent / parent
    if not parent_path.exists():
        raise UserError(f"extends: {parent!r} points nowhere (looked for {parent_path})", source=str(path))
    base, origins = read_scenario_file(parent_path, _chain + (resolved,))
    origins.update(_leaf_origins(data, str(path)))
    return deep_merge(base, data), origins


def parse_set(overrides: Iterable[str]) -> tuple[dict, dict[tuple, str]]:
    """`key.path=value` strings as a nested dict; values are TOML (numbers, booleans, "strings", [lists])
    and bare words are taken as strings."""
    out: dict = {}
    origins: dict[tuple, str] = {}
    for item in overrides:
        if "=" not in item:
            raise UserError(f"--set {item!r}: expected key.path=value")
        key, raw = item.split("=", 1)
        parts = tuple(p.strip() for p in key.strip().split("."))
        if not all(parts):
            raise UserError(f"--set {item!r}: empty key in {key!r}")
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise UserError(f"--set {item!r}: {part!r} is set to a value and a table at once")
        node[parts[-1]] = value
        origins[parts] = "--set"
    return out, origins


def _env_overrides(environ: Mapping[str, str]) -> tuple[dict[tuple, str], list[str]]:
    origins, unknown = {}, []
    fields = set(ScenarioConfig.model_fields)
    for name in environ:  # already only DEMINING_* scenario variables
        parts = tuple(name[len(ENV_PREFIX) :].lower().split("__"))
        if parts[0] not in fields:
            unknown.append(name)
        origins[parts] = f"environment variable {name}"
    return origins, unknown


class _TomlSource(PydanticBaseSettingsSource):
    """The merged scenario files, as the lowest-precedence settings source."""

    def __init__(self, settings_cls: type[BaseSettings], data: dict):
        super().__init__(settings_cls)
        self.data = data

    def get_field_value(self, field, field_name):  # pragma: no cover - __call__ is used instead
        return self.data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return self.data


class _MappingEnvSource(EnvSettingsSource):
    """`DEMINING_*` variables read from the mapping given to `load_scenario`, never from
    `os.environ`, so that loading is a pure function and safe from threads."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]):
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {name if self.case_sensitive else name.lower(): value for name, value in self._environ.items()}


def _settings_class(data: dict, environ: Mapping[str, str]) -> type[ScenarioConfig]:
    class _Loading(ScenarioConfig):
        @classmethod
        def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings):
            return (init_settings, _MappingEnvSource(settings_cls, environ), _TomlSource(settings_cls, data))

    return _Loading


def _fields_at(loc: tuple) -> list[str]:
    """Valid key names at the table that holds `loc[-1]`, for 'did you mean' hints."""
    model: Any = ScenarioConfig
    for part in loc[:-1]:
        if isinstance(model, type) and issubclass(model, BaseModel):
            field = model.model_fields.get(str(part))
            if field is None:
                return []
            model = field.annotation
        else:
            model = _unwrap(model, part)
        model = _strip_optional(model)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    if is_typeddict(model):
        return list(typing.get_type_hints(model))
    return []


def _strip_optional(tp):
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        non_none = [a for a in args if a is not type(None)]
        if len(non_none) == 1:
            return non_none[0]
    if typing.get_origin(tp) is typing.Annotated:
        return args[0]
    return tp


def _unwrap(tp, part):
    if is_typeddict(tp):  # a table of fixed keys (sim.config.every_key): each key has its own type
        return typing.get_type_hints(tp, include_extras=True).get(str(part), tp)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (dict, Mapping) and len(args) == 2:
        return args[1]
    if origin in (list, tuple) and args:
        return args[0]
    return tp


# A cross-reference check names its key path at the start of its message ("agencies.mes.districts: ...").
_KEY_IN_MESSAGE = re.compile(r"(?:Value error, )?([A-Za-z_]\w*(?:\.\w+)*): ")


def _origin_of(loc: tuple, origins: dict[tuple, str], default: str, overrides: dict[tuple, str], across: bool) -> str:
    """Where the value at `loc` came from. An override (--set, then the environment) at or under
    `loc` is the cause, even when a file set the table around it. A check `across` the scenario
    (a delivery against the horizon) may fail for a value set anywhere: it names the file and
    every source that overrode it."""
    for path, origin in overrides.items():
        if path[: len(loc)] == loc or loc[: len(path)] == path:
            return origin
    if across and overrides:
        return " with ".join([default, *dict.fromkeys(overrides.values())])
    for n in range(len(loc), 0, -1):
        if loc[:n] in origins:
            return origins[loc[:n]]
    return default


def format_validation_error(
    exc: ValidationError, origins: dict[tuple, str], default_source: str, overrides: dict[tuple, str] | None = None
) -> UserError:
    """The first problem of a ValidationError as one line: source, key path, reason, what is allowed.
    `overrides` are the keys set by --set and the environment (highest precedence first)."""
    err = exc.errors()[0]
    loc = tuple(str(p) for p in err["loc"])
    key = ".".join(loc)
    named = _KEY_IN_MESSAGE.match(err["msg"]) if not loc or err["type"] == "value_error" else None
    where = loc + tuple(named.group(1).split(".")) if named else loc
    source = _origin_of(where, origins, default_source, overrides or {}, across=not loc)
    if err["type"] == "extra_forbidden":
        if loc[0] == "changes" and len(loc) > 2 and loc[-1] in _fields_at(loc[2:]):
            # A real scenario key, given in a dated change: say it cannot change, not that it is unknown.
            return UserError(f"{key}: {not_changeable_reason(loc[2:])}", source=source)
        valid = _fields_at(loc)
        close = difflib.get_close_matches(loc[-1], valid, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else (f"; valid keys here: {', '.join(valid)}" if valid else "")
        return UserError(f"{key}: unknown key{hint}", source=source)
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if not key:
        return UserError(msg, source=source)
    given = err.get("input")
    shown = "" if isinstance(given, (dict, list)) else f" (got {given!r})"
    return UserError(f"{key}: {msg}{shown}", source=source)


NAMED_TABLES = {"agencies": "agency", "districts": "district", "asset_types": "asset type", "terrain": "terrain"}


def _check_named_tables(data: dict, override_origins: dict[tuple, str]) -> None:
    """Environment variables and --set change existing agencies, districts and asset types; a name
    the scenario files do not define is a typo, not a new table."""
    for full, origin in override_origins.items():
        path = full
        if len(path) >= 4 and path[0] == "costs" and path[1] in ("asset_types", "agencies"):
            path = path[1:]  # costs.asset_types.<asset type>, costs.agencies.<agency>: the scenario's names
        if len(path) >= 3 and path[0] in NAMED_TABLES:
            known = list(data.get(path[0], {}))
            fixed = ScenarioConfig.model_fields[path[0]].annotation
            if is_typeddict(fixed):  # keys set by the schema (terrain): known even when no file names them
                known += [key for key in typing.get_type_hints(fixed) if key not in known]
            if path[1] not in known:
                close = difflib.get_close_matches(path[1], list(known), n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(known)}"
                raise UserError(f"{'.'.join(full)}: unknown {NAMED_TABLES[path[0]]} {path[1]!r}; {hint}", source=origin)


def load_scenario(
    path: str | Path,
    overrides: Iterable[str] = (),
    environ: Mapping[str, str] | None = None,
    additions: Iterable[str] = (),
) -> ScenarioConfig:
    """Read, merge and validate a scenario. `overrides` are `key.path=value` strings (the CLI's `--set`);
    `environ` defaults to a snapshot of the process environment; `additions` are extra deliveries
    (the CLI's `--add`, see `add_deliveries`), checked against the resolved scenario. A function of
    its arguments only: it never changes `os.environ`, so threads may load scenarios at once."""
    path = Path(path)
    data, origins = read_scenario_file(path)
    data.setdefault("name", path.stem)
    set_data, set_origins = parse_set(overrides)
    environ = {
        name: value
        for name, value in (os.environ if environ is None else environ).items()
        if name.upper().startswith(ENV_PREFIX) and name.upper() not in CLI_ENV
    }
    env_origins, unknown = _env_overrides(environ)
    if unknown:
        raise UserError(
            f"unknown setting; scenario keys are: {', '.join(ScenarioConfig.model_fields)}",
            source=f"environment variable {unknown[0]}",
        )
    _check_named_tables(data, {**env_origins, **set_origins})
    origins = {**origins, **env_origins, **set_origins}
    loader = _settings_class(data, environ)
    try:
        loaded = loader(**set_data)
    except ValidationError as exc:
        overrides = {**set_origins, **{k: v for k, v in env_origins.items() if k not in set_origins}}
        raise format_validation_error(exc, origins, str(path), overrides) from None
    except SettingsError:  # a variable's value is not the JSON its key needs
        raise _environment_error(data, environ) from None
    return add_deliveries(ScenarioConfig.model_validate(loaded.model_dump()), additions)


ADD_FORMAT = "AGENCY:ASSET_TYPE:COUNT@YYYY-MM-DD, e.g. anama:machine:30@2026-01-01"
_ADDITION = re.compile(r"([^:@]*):([^:@]*):([^:@]*)@(.*)")
MAX_DELIVERY_COUNT = 100_000  # as sim.config.Delivery.count


def add_deliveries(cfg: ScenarioConfig, additions: Iterable[str]) -> ScenarioConfig:
    """`cfg` with each `AGENCY:ASSET_TYPE:COUNT@DATE` (the CLI's `--add`) as an extra delivery of
    COUNT assets to the agency on DATE, noted "--add" so the resolved config says where it came from."""
    additions = list(additions)
    if not additions:
        return cfg
    data = cfg.model_dump()
    for item in additions:
        parsed = _ADDITION.fullmatch(item.strip())
        if parsed is None:
            raise UserError(f"--add {item!r}: expected {ADD_FORMAT}")
        agency, asset_type, count_text, date_text = (part.strip() for part in parsed.groups())
        if agency not in cfg.agencies:
            raise UserError(f"--add {item!r}: unknown agency {agency!r}; known: {', '.join(cfg.agencies)}")
        if asset_type not in cfg.asset_types:
            raise UserError(f"--add {item!r}: unknown asset type {asset_type!r}; known: {', '.join(cfg.asset_types)}")
        try:
            count = int(count_text)
        except ValueError:
            raise UserError(f"--add {item!r}: count {count_text!r} is not a whole number") from None
        if not 1 <= count <= MAX_DELIVERY_COUNT:
            raise UserError(f"--add {item!r}: count must be from 1 to {MAX_DELIVERY_COUNT:,}, not {count:,}")
        try:
            date = dt.date.fromisoformat(date_text)
        except ValueError:
            raise UserError(f"--add {item!r}: {date_text!r} is not a date; give YYYY-MM-DD") from None
        if not cfg.start_date <= date <= cfg.end_date:
            raise UserError(
                f"--add {item!r}: {date} is outside the campaign {cfg.start_date} to {cfg.end_date} "
                "(move it, or lengthen the horizon with --years)"
            )
        delivery = {"asset_type": asset_type, "count": count, "date": date, "note": "--add"}
        data["agencies"][agency]["extra_deliveries"].append(delivery)
    try:
        return ScenarioConfig.model_validate(data)
    except ValidationError as exc:  # every value was checked above; kept so nothing slips through unnamed
        raise format_validation_error(exc, {}, "--add") from None


def _environment_error(data: dict, environ: Mapping[str, str]) -> UserError:
    """The variable whose value pydantic-settings could not parse, found by loading each alone."""
    for name, value in environ.items():
        try:
            _settings_class(data, {name: value})()
        except SettingsError:
            return UserError(f"not valid JSON for a table or list: {value[:60]!r}", source=f"environment variable {name}")
        except ValidationError:
            continue
    return UserError("a DEMINING_* environment variable is not valid JSON for its key", source="environment")


def config_from_dict(data: dict, source: str = "config") -> ScenarioConfig:
    """Validate an already-merged config (e.g. a results folder's config.toml)."""
    try:
        return ScenarioConfig.model_validate(data)
    except ValidationError as exc:
        raise format_validation_error(exc, {}, source) from None
