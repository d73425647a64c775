"""Parameter files: a named, versioned set of registry values with where each one came from.

A parameter file is JSON (its schema is generated from the registry by :func:`json_schema`; files
are checked against it as the registry stands, and ``costmodel/schemas/paramset-v<N>.json`` is a
copy published for other tools, rebuilt by ``costmodel regenerate``)::

    {"schema_version": 1, "model_hash": "...", "name": "...", "description": "...",
     "parameters": {"alloc_ns": {"value": 310.0, "unit": "ns", "ci_low": 280.0, "ci_high": 350.0,
                                 "source": "measured", "note": "..."},
                    "shootdown_model": {"value": "linear", "source": "assumed", "note": "..."}, ...},
     "fit": [{"name": ..., "method": ..., "parameters": [...], "n_points": ..., "residuals": [...]}, ...],
     "provenance": {...facts about the measured machine...}}

Every machine parameter of the registry must be present; workload parameters may be (a reference
set can carry the scenario it was published with). ``source`` is ``measured`` (fitted from
measurements; the interval is a bootstrap confidence interval), ``published`` (from a cited
figure; the interval, if any, is the published range) or ``assumed`` (the interval, if any, is the
range the assumption is meant to cover, not a measurement).

Loading checks the JSON, migrates an older ``schema_version`` (printing what changed), refuses a
newer one, and checks every value against the registry, naming the offending field. Values are
numbers only: a string is never evaluated, whatever it holds.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Mapping, Callable

from . import registry
from .atomic import write_atomic
from .errors import UserError

SCHEMA_VERSION = 1
SOURCES = ("measured", "published", "assumed")

#: what each schema version changed, for people reading old files (kerncraft's CHANGES_SINCE)
CHANGES: dict[int, str] = {
    1: "first version: per parameter value, unit, ci_low, ci_high, source, note; fit records; provenance",
}

def _data_dir() -> Path:
    """The shipped data: the repository's ``data/`` in a checkout, else the copy the build put inside
    the package (``costmodel/_data``: the parameter and reference sets, no measurements)."""
    checkout = Path(__file__).resolve().parents[1] / "data"
    if (checkout / "params").is_dir():
        return checkout
    return Path(__file__).resolve().parent / "_data"


DATA_DIR = _data_dir()
PARAMS_DIR = DATA_DIR / "params"
REFERENCE_DIR = DATA_DIR / "reference"
#: the default parameter set of every command, ``make demo`` and the notebooks: the committed set
#: whose remote drain and drain-all base were measured (the costs the verdict turns on)
DEFAULT_SET = "kvm-amd-epyc-f26m2-2cpu-linux6.18"


# ---- migrations ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Migration:
    """Turns a document of ``from_version`` into one of ``to_version``; ``note`` says what changed."""

    from_version: int
    to_version: int
    func: Callable[[dict], dict]
    note: str


#: from_version -> its migration. Version 1 is the first format, so nothing is registered yet;
#: the next format change adds one entry here (and a line to CHANGES).
MIGRATIONS: dict[int, Migration] = {}


def register_migration(from_version: int, func: Callable[[dict], dict], note: str,
                       to_version: int | None = None) -> Migration:
    """Add a migration to the table (the next format change, or a test's fake old version)."""
    to = from_version + 1 if to_version is None else to_version
    if to <= from_version:
        raise ValueError("a migration must go to a newer version")
    m = Migration(from_version, to, func, note)
    MIGRATIONS[from_version] = m
    return m


def migrate(doc: dict, where: str = "parameter file", notes_to=None) -> dict:
    """Bring ``doc`` to :data:`SCHEMA_VERSION`, printing one note per step to ``notes_to``
    (stderr by default); refuse versions that are newer or that no migration starts from."""
    version = doc.get("schema_version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise UserError(f"{where}: schema_version: expected a whole number such as {SCHEMA_VERSION},"
                        f" got {version!r}")
    if version > SCHEMA_VERSION:
        raise UserError(f"{where}: schema_version {version} is newer than this costmodel reads"
                        f" (up to {SCHEMA_VERSION}); upgrade costmodel to load it")
    out = notes_to if notes_to is not None else sys.stderr
    while version < SCHEMA_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            known = ", ".join(str(v) for v in sorted(MIGRATIONS)) or "none"
            raise UserError(f"{where}: schema_version {version} is older than any this costmodel can"
                            f" migrate (migrations start from: {known}); recreate the file")
        doc = step.func(dict(doc))
        doc["schema_version"] = step.to_version
        print(f"note: {where}: migrated schema_version {version} -> {step.to_version}: {step.note}", file=out)
        version = step.to_version
    return doc


# ---- the in-memory form --------------------------------------------------------------------


@dataclass
class Entry:
    """One parameter of a set. ``unit``, ``ci_low`` and ``ci_high`` are for numerics only."""

    value: float | int | str
    source: str
    note: str
    unit: str | None = None
    ci_low: float | int | None = None
    ci_high: float | int | None = None

    def to_dict(self, name: str) -> dict:
        if name in registry.CATEGORICAL:
            return {"value": self.value, "source": self.source, "note": self.note}
        return {"value": self.value, "unit": self.unit, "ci_low": self.ci_low, "ci_high": self.ci_high,
                "source": self.source, "note": self.note}


@dataclass
class ParamSet:
    name: str
    description: str
    parameters: dict[str, Entry]
    fit: list[dict] = field(default_factory=list)
    provenance: dict = field(default_factory=dict)
    model_hash: str = ""
    schema_version: int = SCHEMA_VERSION
    #: the registry generation the set was written with (files without one are generation 1)
    registry_generation: int = registry.REGISTRY_GENERATION

    def __post_init__(self):
        if not self.model_hash:
            from .model import model_hash

            self.model_hash = model_hash()

    def values(self) -> dict[str, float | int | str]:
        """name -> value, as ``--params`` and :func:`registry.resolve` take them."""
        return {n: e.value for n, e in self.parameters.items()}

    def point(self) -> registry.Point:
        """The set's values over the registry defaults, checked once: the :class:`registry.Point`
        that what starts from this set passes along (the set's values have its name as origin)."""
        return registry.resolve(base=self.values(), base_origin=self.name)

    def to_dict(self) -> dict:
        order = [n for n in registry.PARAMS if n in self.parameters]
        return {
            "schema_version": self.schema_version,
            "registry_generation": self.registry_generation,
            "model_hash": self.model_hash,
            "name": self.name,
            "description": self.description,
            "parameters": {n: self.parameters[n].to_dict(n) for n in order},
            "fit": self.fit,
            "provenance": self.provenance,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"


def numeric_entry(name: str, value, source: str, note: str, ci_low=None, ci_high=None) -> Entry:
    """An :class:`Entry` for a numeric parameter with the registry's unit and type."""
    spec = registry.NUMERIC[name]
    conv = int if spec.integer else float
    lo = None if ci_low is None else conv(ci_low)
    hi = None if ci_high is None else conv(ci_high)
    return Entry(conv(value), source, note, spec.unit, lo, hi)


# ---- the schema ----------------------------------------------------------------------------


def required_parameters() -> list[str]:
    """Every machine parameter: a set must say what it assumes about each."""
    return [n for n, e in registry.PARAMS.items() if e.kind == registry.MACHINE]


def json_schema() -> dict:
    """The JSON Schema of the current version, generated from the registry."""
    bound = {"type": ["number", "null"]}
    props: dict[str, dict] = {}
    for name, e in registry.PARAMS.items():
        if isinstance(e, registry.Numeric):
            vtype = "integer" if e.integer else "number"
            props[name] = {
                "type": "object",
                "required": ["value", "unit", "ci_low", "ci_high", "source", "note"],
                "additionalProperties": False,
                "properties": {
                    "value": {"type": vtype, "minimum": e.low, "maximum": e.high},
                    "unit": {"const": e.unit},
                    "ci_low": bound,
                    "ci_high": bound,
                    "source": {"$ref": "#/$defs/source"},
                    "note": {"type": "string"},
                },
            }
        else:
            props[name] = {
                "type": "object",
                "required": ["value", "source", "note"],
                "additionalProperties": False,
                "properties": {
                    "value": {"enum": list(e.choices)},
                    "source": {"$ref": "#/$defs/source"},
                    "note": {"type": "string"},
                },
            }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"costmodel/schemas/paramset-v{SCHEMA_VERSION}.json",
        "title": f"costmodel parameter set, schema version {SCHEMA_VERSION}",
        "description": "Generated from costmodel.registry by costmodel.paramfile.json_schema() for other tools"
                       " (loading checks a file against the registry itself); rebuilt by"
                       f" `{registry.REGENERATE}`.",
        "type": "object",
        "required": ["schema_version", "model_hash", "name", "description", "parameters", "fit", "provenance"],
        "additionalProperties": False,
        "properties": {
            "schema_version": {"const": SCHEMA_VERSION},
            "registry_generation": {"type": "integer", "minimum": 1},
            "model_hash": {"type": "string", "pattern": "^[0-9a-f]{16}$"},
            "name": {"type": "string", "minLength": 1},
            "description": {"type": "string"},
            "parameters": {
                "type": "object",
                "required": required_parameters(),
                "additionalProperties": False,
                "properties": props,
            },
            "fit": {"type": "array", "items": {"$ref": "#/$defs/fit"}},
            "provenance": {"type": "object"},
        },
        "$defs": {
            "source": {"enum": list(SOURCES)},
            "fit": {
                "type": "object",
                "required": ["name", "method", "parameters", "n_points", "residuals"],
                "properties": {
                    "name": {"type": "string"},
                    "method": {"type": "string"},
                    "parameters": {"type": "array", "items": {"type": "string"}},
                    "n_points": {"type": "integer", "minimum": 0},
                    "residuals": {"type": "array", "items": {"type": "object"}},
                    "information_criterion": {"type": "object"},
                    "note": {"type": "string"},
                },
            },
        },
    }


def schema_path(version: int = SCHEMA_VERSION) -> Path:
    return Path(str(resources.files("costmodel") / "schemas" / f"paramset-v{version}.json"))


@lru_cache(maxsize=None)
def shipped_schema(version: int = SCHEMA_VERSION) -> dict:
    path = schema_path(version)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:  # pragma: no cover - a broken installation
        raise RuntimeError(f"{path} is missing; run `{registry.REGENERATE}`") from None


# ---- parsing and validation ----------------------------------------------------------------


class _NonFinite:
    """What NaN, Infinity or an overflowing number in the JSON text parses to, so the check can
    name the field that holds it."""

    def __init__(self, text: str):
        self.text = text


def _parse_float(text: str):
    value = float(text)
    return value if math.isfinite(value) else _NonFinite(text)


def _no_duplicates(pairs):
    out = {}
    for key, value in pairs:
        if key in out:
            raise UserError(f"key {key!r} appears twice in one object; keep one")
        out[key] = value
    return out


def _parse_json(text: str, where: str):
    try:
        return json.loads(text, parse_constant=_NonFinite, parse_float=_parse_float,
                          object_pairs_hook=_no_duplicates)
    except UserError as exc:
        raise UserError(f"{where}: {exc}") from None
    except json.JSONDecodeError as exc:
        head = text.lstrip()[:1]
        if head and head not in "{[":
            first = text.strip().splitlines()[0][:40] if text.strip() else ""
            raise UserError(f"{where}: not a parameter file: JSON starts with {{, this starts with {first!r}"
                            + (" (a CSV: measurements go to `costmodel calibrate DIR`)" if "," in first else "")
                            ) from None
        ended_early = exc.pos >= len(text.rstrip()) or not text.rstrip().endswith(("}", "]"))
        hint = (f" (the file ends early, after {len(text):,} characters: truncated?)" if ended_early else "")
        raise UserError(f"{where}: not valid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}{hint}") from None


def _find_nonfinite(node, path: str = ""):
    if isinstance(node, _NonFinite):
        return path, node.text
    if isinstance(node, dict):
        items = node.items()
    elif isinstance(node, list):
        items = ((f"[{i}]", v) for i, v in enumerate(node))
    else:
        return None
    for key, value in items:
        sub = f"{path}{key}" if key.startswith("[") else (f"{path}.{key}" if path else key)
        found = _find_nonfinite(value, sub)
        if found:
            return found
    return None


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _describe(x) -> str:
    if isinstance(x, str):
        return f"the string {x!r}"
    if x is None:
        return "null"
    if isinstance(x, bool):
        return f"the boolean {json.dumps(x)}"
    return f"a {type(x).__name__}" if isinstance(x, (dict, list)) else repr(x)


def _check_bound(where: str, field_path: str, name: str, raw, spec: registry.Numeric):
    if raw is None:
        return None
    if not _is_number(raw):
        raise UserError(f"{where}: {field_path}: expected a number in {spec.unit} or null, got {_describe(raw)}")
    return raw


def _check_numeric(where: str, name: str, entry: dict, spec: registry.Numeric) -> Entry:
    base = f"parameters.{name}"
    for key in ("value", "unit", "ci_low", "ci_high", "source", "note"):
        if key not in entry:
            raise UserError(f"{where}: {base}.{key} is missing; every numeric parameter needs value, unit,"
                            " ci_low, ci_high (a number or null), source and note")
    extra = sorted(set(entry) - {"value", "unit", "ci_low", "ci_high", "source", "note"})
    if extra:
        raise UserError(f"{where}: {base}: unknown field {extra[0]!r}; allowed: value, unit, ci_low, ci_high, source, note")
    raw = entry["value"]
    if isinstance(raw, str):
        raise UserError(f"{where}: {base}.value is {_describe(raw)}; write a plain JSON number in {spec.unit}"
                        " (strings are never evaluated)")
    if not _is_number(raw):
        raise UserError(f"{where}: {base}.value: expected a number in {spec.unit}, got {_describe(raw)}")
    if raw < 0 <= spec.low:
        raise UserError(f"{where}: {base}.value is {raw:g}, negative; {name} must be between"
                        f" {spec.low:g} and {spec.high:g} {spec.unit}")
    if entry["unit"] != spec.unit:
        raise UserError(f"{where}: {base}.unit is {entry['unit']!r} but {name} is in {spec.unit!r};"
                        f" convert the value and write \"unit\": \"{spec.unit}\"")
    try:
        value = spec.parse(raw)
    except UserError as exc:
        raise UserError(f"{where}: {base}.value: {exc}") from None
    lo = _check_bound(where, f"{base}.ci_low", name, entry["ci_low"], spec)
    hi = _check_bound(where, f"{base}.ci_high", name, entry["ci_high"], spec)
    if (lo is None) != (hi is None):
        raise UserError(f"{where}: {base}: give both ci_low and ci_high, or neither (null)")
    if lo is not None and lo > hi:
        raise UserError(f"{where}: {base}: ci_low {lo:g} is above ci_high {hi:g}; swap them")
    slack = 1e-9 * max(1.0, abs(value))
    if lo is not None and not lo - slack <= value <= hi + slack:
        raise UserError(f"{where}: {base}.value {value:g} lies outside its own interval [{lo:g}, {hi:g}];"
                        " fix the value or the interval")
    source = _check_source(where, base, entry["source"])
    note = _check_note(where, base, entry["note"])
    return Entry(value, source, note, spec.unit, lo, hi)


def _check_categorical(where: str, name: str, entry: dict, spec: registry.Categorical) -> Entry:
    base = f"parameters.{name}"
    for key in ("value", "source", "note"):
        if key not in entry:
            raise UserError(f"{where}: {base}.{key} is missing; a categorical parameter needs value, source and note")
    extra = sorted(set(entry) - {"value", "source", "note"})
    if extra:
        raise UserError(f"{where}: {base}: unknown field {extra[0]!r}; a categorical has only value, source and note")
    try:
        value = spec.parse(entry["value"])
    except UserError as exc:
        raise UserError(f"{where}: {base}.value: {exc}") from None
    return Entry(value, _check_source(where, base, entry["source"]), _check_note(where, base, entry["note"]))


def _check_source(where: str, base: str, source) -> str:
    if source not in SOURCES:
        raise UserError(f"{where}: {base}.source is {_describe(source)}; choose one of {', '.join(SOURCES)}")
    return source


def _check_note(where: str, base: str, note) -> str:
    if not isinstance(note, str):
        raise UserError(f"{where}: {base}.note: expected text, got {_describe(note)}")
    return note


#: the validator of :func:`json_schema` for the registry as it is now (keyed by its entries)
_VALIDATOR: dict[tuple, object] = {}


def _validator():
    """A validator of the schema generated from the registry as loaded: files are checked against
    the registry itself, so a parameter just declared is accepted before any file is regenerated
    (the shipped schema file is a published copy for other tools, checked by a test)."""
    import jsonschema

    key = tuple((n, id(e)) for n, e in registry.PARAMS.items())
    if key not in _VALIDATOR:
        schema = json_schema()
        _VALIDATOR.clear()
        _VALIDATOR[key] = jsonschema.validators.validator_for(schema)(schema)
    return _VALIDATOR[key]


def _schema_errors(doc: dict, where: str) -> None:
    import jsonschema

    error = jsonschema.exceptions.best_match(_validator().iter_errors(doc))
    if error is not None:
        path = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in error.absolute_path)
        path = path.replace(".[", "[") or "(top level)"
        raise UserError(f"{where}: {path}: {error.message}")


def new_parameter_entry(name: str) -> dict:
    """The entry a file written before ``name`` existed gets: the registry default, marked assumed,
    with the registry's plausible range as its interval where it declares one."""
    spec = registry.PARAMS[name]
    note = f"not in this file (written before costmodel had {name}): the registry default, assumed"
    if isinstance(spec, registry.Categorical):
        return {"value": spec.default, "source": "assumed", "note": note}
    iv = registry.default_interval(name, spec.default)
    lo, hi = (None, None) if iv is None else (iv[0], iv[1])
    if iv is not None and not lo <= spec.default <= hi:
        lo, hi = None, None
    if lo is not None and spec.integer:
        lo, hi = int(lo), int(hi)
    return {"value": spec.default, "unit": spec.unit, "ci_low": lo, "ci_high": hi, "source": "assumed",
            "note": note + (f"; range: {iv[2]}" if lo is not None else "")}


def fill_new_parameters(params: dict, where: str, notes_to=None, generation: int = 1) -> dict:
    """Every machine parameter the registry has gained since the file was written (introduced in a
    later registry generation than the file's), added as :func:`new_parameter_entry` with one
    printed note: so a new parameter never makes an older file unloadable. A parameter the file's
    own generation already had is not filled in: its absence is an error (said by the caller)."""
    missing = [n for n in required_parameters() if n not in params and registry.PARAMS[n].introduced > generation]
    if not missing:
        return params
    out = notes_to if notes_to is not None else sys.stderr
    shipped = Path(where).resolve().parent in (PARAMS_DIR.resolve(), REFERENCE_DIR.resolve())
    print(f"note: {where}: {len(missing)} parameter(s) newer than the file, taken as assumed registry"
          f" defaults: {', '.join(missing)}" + (f" (a shipped set: `{registry.REGENERATE}` rebuilds it)" if shipped else ""),
          file=out)
    filled = dict(params)
    for name in missing:
        filled[name] = new_parameter_entry(name)
    return filled


def from_document(doc, where: str = "parameter file", notes_to=None) -> ParamSet:
    """Check a parsed document (migrating an older version) and return its :class:`ParamSet`."""
    found = _find_nonfinite(doc)
    if found:
        path, text = found
        raise UserError(f"{where}: {path or '(top level)'}: {text} is not a finite number; give a plain number")
    if not isinstance(doc, dict):
        raise UserError(f"{where}: expected a JSON object with schema_version, parameters, ...; got {_describe(doc)}")
    if "schema_version" not in doc:
        raise UserError(f"{where}: schema_version is missing; this costmodel writes {SCHEMA_VERSION}")
    doc = migrate(doc, where, notes_to)
    required = ("model_hash", "name", "description", "parameters", "fit", "provenance")
    for key in required:
        if key not in doc:
            raise UserError(f"{where}: {key} is missing; a parameter file has schema_version, "
                            + ", ".join(required))
    params = doc["parameters"]
    if not isinstance(params, dict):
        raise UserError(f"{where}: parameters: expected an object of name -> {{value, ...}}, got {_describe(params)}")
    generation = doc.get("registry_generation", 1)
    if isinstance(generation, bool) or not isinstance(generation, int) or generation < 1:
        raise UserError(f"{where}: registry_generation: expected a whole number >= 1, got {generation!r}")
    if generation > registry.REGISTRY_GENERATION:
        raise UserError(f"{where}: registry_generation {generation} is newer than this costmodel's"
                        f" ({registry.REGISTRY_GENERATION}); upgrade costmodel to load it")
    doc = dict(doc, parameters=fill_new_parameters(params, where, notes_to, generation))
    params = doc["parameters"]
    entries: dict[str, Entry] = {}
    for name, entry in params.items():
        if name not in registry.PARAMS:
            raise UserError(f"{where}: parameters.{name}: {registry.unknown_parameter(name)}")
        if not isinstance(entry, dict):
            raise UserError(f"{where}: parameters.{name}: expected an object with value, source, note, ...;"
                            f" got {_describe(entry)}")
        spec = registry.PARAMS[name]
        if isinstance(spec, registry.Numeric):
            entries[name] = _check_numeric(where, name, entry, spec)
        else:
            entries[name] = _check_categorical(where, name, entry, spec)
    missing = [n for n in required_parameters() if n not in entries]
    if missing:
        raise UserError(f"{where}: parameters.{missing[0]} is missing"
                        + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
                        + "; every machine parameter must be given (source \"assumed\" if not known)")
    _schema_errors(doc, where)
    try:
        registry.resolve(base={n: e.value for n, e in entries.items()})
    except UserError as exc:
        raise UserError(f"{where}: parameters: {exc}") from None
    return ParamSet(name=doc["name"], description=doc["description"], parameters=entries,
                    fit=doc["fit"], provenance=doc["provenance"], model_hash=doc["model_hash"],
                    schema_version=doc["schema_version"], registry_generation=registry.REGISTRY_GENERATION)


def loads(text: str, where: str = "parameter file", notes_to=None) -> ParamSet:
    return from_document(_parse_json(text, where), where, notes_to)


def load(path: str | Path, notes_to=None) -> ParamSet:
    """Read and check a parameter file; errors name the file and the field."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte-order mark some editors write is fine
    except FileNotFoundError:
        raise UserError(f"{path}: no such parameter file; give a JSON file, or the name of a committed set: "
                        + ", ".join(committed_sets())) from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory; give a parameter file (.json)") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a text (UTF-8) file; give a JSON parameter file") from None
    return loads(text, str(path), notes_to)


def load_values(path: str | Path) -> dict[str, float | int | str]:
    """name -> value from a parameter file, for ``--params FILE``."""
    return load(path).values()


def save(paramset: ParamSet, path: str | Path, force: bool = False) -> Path:
    """Check ``paramset`` as :func:`load` would, then write it atomically (refusing to overwrite
    an existing file unless ``force``)."""
    text = paramset.to_json()
    loads(text, f"{path} (about to be written)")
    return write_atomic(path, text, force=force)


def default_params_path() -> Path:
    """The calibrated parameter file of this project's own machine (``make demo``, notebooks)."""
    path = PARAMS_DIR / f"{DEFAULT_SET}.json"
    if not path.is_file():
        raise UserError(f"default parameter file {path} is missing; create it with `costmodel calibrate "
                        f"data/measurements/{DEFAULT_SET} -o data/params/{DEFAULT_SET}.json`")
    return path


#: provenance fields that name a CPU: sets measured on the same vendor, family and model match
CPU_KEYS = ("cpu_vendor", "cpu_family", "cpu_model_number")


def sets_for_cpu(facts: Mapping) -> list[Path]:
    """Committed calibrated sets (data/params) measured on the CPU that ``facts`` (provenance-style
    fields) describe."""
    want = tuple(facts.get(k) for k in CPU_KEYS)
    if None in want:
        return []
    out = []
    for path in sorted(PARAMS_DIR.glob("*.json")) if PARAMS_DIR.is_dir() else []:
        try:
            prov = json.loads(path.read_text(encoding="utf-8")).get("provenance", {})
        except (OSError, ValueError):
            continue
        if tuple(prov.get(k) for k in CPU_KEYS) == want:
            out.append(path)
    return out


def committed_sets() -> dict[str, Path]:
    """``<directory>/<file stem>`` -> path of every committed parameter file: data/params (sets
    calibrated here), then data/reference (sets from published figures). Empty where the data
    directories are absent (an installed wheel)."""
    out: dict[str, Path] = {}
    for d in (PARAMS_DIR, REFERENCE_DIR):
        for p in sorted(d.glob("*.json")) if d.is_dir() else []:
            out[f"{d.name}/{p.stem}"] = p
    return out


# ---- show and diff -------------------------------------------------------------------------


def _fmt(x) -> str:
    """A value in a show or diff table (its unit in a column of its own): the project's number
    style, four significant digits, never an exponent."""
    from .textfmt import format_value

    if x is None:
        return "-"
    if isinstance(x, str):
        return x
    return format_value(x)


def _interval(e: Entry) -> str:
    return "" if e.ci_low is None else f"{_fmt(e.ci_low)} .. {_fmt(e.ci_high)}"


def _hash_line(ps: ParamSet) -> str:
    from .model import model_hash

    current = model_hash()
    state = "matches this model" if ps.model_hash == current else f"this model is {current}: made for other formulas"
    return f"model_hash {ps.model_hash} ({state})"


def show(path: str | Path, as_json: bool = False) -> str:
    """A parameter file for people (a table with sources and notes) or as checked JSON."""
    ps = load(path)
    if as_json:
        return ps.to_json().rstrip("\n")
    rows = [(n, _fmt(e.value), e.unit or "", _interval(e), e.source, e.note) for n, e in ps.parameters.items()]
    heads = ("parameter", "value", "unit", "interval", "source")
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(heads)]
    lines = [f"{ps.name}: {ps.description}", f"schema_version {ps.schema_version}, {_hash_line(ps)}", ""]
    lines.append("  ".join(h.ljust(w) for h, w in zip(heads, widths)) + "  note")
    lines.append("-" * (sum(widths) + 2 * len(widths) + 4))
    for r in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[5])
    if ps.fit:
        lines += ["", "fits:"]
        for f in ps.fit:
            ic = f.get("information_criterion")
            extra = ""
            if ic and ic.get("name") == "none":
                shape = ps.parameters.get("shootdown_model")
                how = "taken from a published curve" if shape is not None and shape.source == "published" else "assumed"
                extra = f"; shape {ic.get('chosen')} {how} (too few target counts to choose it)"
            elif ic:
                extra = f"; {ic.get('name', 'IC')} chose {ic.get('chosen')}"
            lines.append(f"  {f['name']}: {f['method']}, {f['n_points']} points{extra}"
                         + (f" - {f['note']}" if f.get("note") else ""))
    if ps.provenance:
        lines += ["", "provenance: " + ", ".join(f"{k}={v}" for k, v in ps.provenance.items()
                                                if isinstance(v, (str, int, float)) and not isinstance(v, bool))]
    return "\n".join(lines)


def _compare(a: Entry | None, b: Entry | None) -> str:
    if a is None or b is None:
        return "only in " + ("B" if a is None else "A")
    if isinstance(a.value, str) or isinstance(b.value, str):
        return "same" if a.value == b.value else "differs"
    if a.value == b.value:
        return "same"
    intervals = [e for e in (a, b) if e.ci_low is not None]
    if not intervals:
        return "differs (no intervals)"
    outside_a = a.ci_low is None or not a.ci_low <= b.value <= a.ci_high
    outside_b = b.ci_low is None or not b.ci_low <= a.value <= b.ci_high
    if outside_a and outside_b:
        return "EXCEEDS BOTH INTERVALS" if len(intervals) == 2 else "exceeds the one interval"
    return "within an interval"


def _side(e: Entry | None) -> dict | None:
    """One set's value, interval and source of a parameter, as a diff lists it (None: not in the set)."""
    return None if e is None else {"value": e.value, "ci_low": e.ci_low, "ci_high": e.ci_high, "source": e.source}


def _side_cell(side: dict | None, short_source: bool = False) -> str:
    """A :func:`_side` as a table cell: value, interval and source (its first letter if ``short_source``)."""
    if side is None:
        return "-"
    iv = "" if side["ci_low"] is None else f" ({_fmt(side['ci_low'])} .. {_fmt(side['ci_high'])})"
    return f"{_fmt(side['value'])}{iv} {side['source'][0] if short_source else side['source']}"


def _diff_text(preamble: list[str], heads, table, rows: list[dict], flagged_label: str) -> str:
    """A diff as text: the preamble lines, the table in aligned columns under ``heads``, then the
    parameters whose verdict is beyond both intervals."""
    widths = [max(len(h), *(len(t[i]) for t in table)) for i, h in enumerate(heads)]
    lines = list(preamble)
    lines.append("  ".join(h.ljust(w) for h, w in zip(heads, widths)).rstrip())
    lines.append("-" * len(lines[-1]))
    lines += ["  ".join(c.ljust(w) for c, w in zip(t, widths)).rstrip() for t in table]
    flagged = [r["parameter"] for r in rows if r["verdict"] == "EXCEEDS BOTH INTERVALS"]
    lines += ["", f"{flagged_label}: {', '.join(flagged) if flagged else 'none'}"]
    return "\n".join(lines)


def diff_sets(a: ParamSet, b: ParamSet) -> list[dict]:
    """One row per parameter of either set: both values, intervals, sources and the verdict."""
    rows = []
    for name in registry.PARAMS:
        ea, eb = a.parameters.get(name), b.parameters.get(name)
        if ea is None and eb is None:
            continue
        row = {"parameter": name, "unit": (ea or eb).unit or ""}
        for tag, e in (("a", ea), ("b", eb)):
            row[tag] = _side(e)
        both_numeric = ea is not None and eb is not None and not isinstance(ea.value, str)
        row["difference"] = (eb.value - ea.value) if both_numeric else None
        row["verdict"] = _compare(ea, eb)
        rows.append(row)
    return rows


def diff(path_a: str | Path, path_b: str | Path, as_json: bool = False) -> str:
    """Two parameter files side by side, flagging differences beyond both intervals."""
    a, b = load(path_a), load(path_b)
    rows = diff_sets(a, b)
    if as_json:
        return json.dumps({"a": {"file": str(path_a), "name": a.name}, "b": {"file": str(path_b), "name": b.name},
                           "parameters": rows}, indent=2)
    table = [(r["parameter"], r["unit"], _side_cell(r["a"]), _side_cell(r["b"]),
              _fmt(r["difference"]) if r["difference"] is not None else "", r["verdict"]) for r in rows]
    heads = ("parameter", "unit", f"A: {a.name}", f"B: {b.name}", "B - A", "verdict")
    return _diff_text([f"A = {path_a}", f"B = {path_b}", ""], heads, table, rows, "beyond both intervals")


def diff_many(paths, as_json: bool = False) -> str:
    """Three or more parameter files side by side (machines compared): each set's value, interval
    and source per parameter, the spread (largest over smallest value) and whether some pair of
    sets lies beyond both of its intervals."""
    paths = list(paths)
    sets = [load(p) for p in paths]
    rows = []
    for name in registry.PARAMS:
        entries = [ps.parameters.get(name) for ps in sets]
        present = [e for e in entries if e is not None]
        if not present:
            continue
        pairs = [_compare(a, b) for i, a in enumerate(entries) for b in entries[i + 1:]]
        numeric = [e.value for e in present if not isinstance(e.value, str)]
        spread = (max(numeric) / min(numeric)) if numeric and min(numeric) > 0 else None
        rows.append({"parameter": name, "unit": present[0].unit or "",
                     "sets": [_side(e) for e in entries],
                     "spread": spread,
                     "verdict": "EXCEEDS BOTH INTERVALS" if "EXCEEDS BOTH INTERVALS" in pairs else
                                ("differs" if any(v not in ("same",) for v in pairs) else "same")})
    if as_json:
        return json.dumps({"sets": [{"file": str(p), "name": ps.name} for p, ps in zip(paths, sets)],
                           "parameters": rows}, indent=2)
    tags = [chr(ord("A") + i) for i in range(len(sets))]
    table = [(r["parameter"], r["unit"], *(_side_cell(c, short_source=True) for c in r["sets"]),
              "" if r["spread"] is None else f"{r['spread']:.3g}x", r["verdict"]) for r in rows]
    heads = ("parameter", "unit", *(f"{t}: {ps.name}" for t, ps in zip(tags, sets)), "max/min", "verdict")
    preamble = [f"{t} = {p}" for t, p in zip(tags, paths)] + ["(m measured, p published, a assumed)", ""]
    return _diff_text(preamble, heads, table, rows, "some pair of sets beyond both intervals")
