"""Everything generated from the registry and the shipped data, rebuilt by one command.

``costmodel regenerate`` rewrites, in this order:

1. ``schema``: the parameter-file JSON Schema published beside the package
   (``costmodel/schemas/paramset-v<N>.json``, for editors and other tools). Loading a file does not
   read it: files are checked against the schema generated from the registry as loaded, so a new
   parameter never makes a file unloadable while this copy is stale;
2. ``readme``: the README's parameter table (what ``costmodel params --markdown`` prints);
3. ``reference``: the reference sets of ``data/reference/`` from their cited CSVs;
4. ``params``: each calibrated set ``data/params/<id>.json`` from ``data/measurements/<id>/`` (the
   fit's seeds are fixed: an unchanged registry and model give the same bytes; a new machine
   parameter enters every set, fitted where a measurement holds it, else its assumed default).

``--check`` writes nothing, lists what is stale and exits 1 if anything is; ``--only`` limits either
to some of the four (the command's arguments: ``costmodel/commands/regenerate_cmd.py``). Each
artefact's test fails with :func:`stale_message`, which names the command. It works in a checkout of
the repository (the README and ``data/`` beside the package).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

from . import registry
from .atomic import write_atomic
from .errors import UserError
from .paramfile import DATA_DIR, PARAMS_DIR, REFERENCE_DIR, json_schema, loads, schema_path
from .textfmt import format_value

# The reference builder and calibration (scipy, pandas) are imported inside the two functions that
# rebuild the sets: `costmodel params --markdown` imports this module for its table alone.

#: the one command that rebuilds every generated file
COMMAND = registry.REGENERATE
ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
#: the first line of the README's parameter table
TABLE_HEADER = "| name | kind | unit | default | bounds | description |"


def stale_message(path, what: str = "") -> str:
    """One line for a generated file that no longer matches its source, naming the command."""
    return f"{path} is stale{f' ({what})' if what else ''}: run `{COMMAND}`"


def first_difference(want, got, path: str = "") -> str:
    """Where two JSON documents first differ, in a few words ("" where they are equal): a key one
    lacks (``lacks parameters.x``, ``still has parameters.y``) or the first value that differs."""
    if isinstance(want, dict) and isinstance(got, dict):
        for key in want:
            if key not in got:
                return f"lacks {path}{key}"
        for key in got:
            if key not in want:
                return f"still has {path}{key}"
        for key in want:
            found = first_difference(want[key], got[key], f"{path}{key}.")
            if found:
                return found
        return ""
    if isinstance(want, list) and isinstance(got, list) and len(want) == len(got):
        for i, (a, b) in enumerate(zip(want, got)):
            found = first_difference(a, b, f"{path}[{i}].")
            if found:
                return found
        return ""
    return "" if want == got else f"{path.rstrip('.') or 'the document'} differs"


def schema_difference(shipped: dict, generated: dict) -> str:
    """What the shipped schema lacks or still has against the one the registry generates."""
    def params(schema):
        return schema.get("properties", {}).get("parameters", {}).get("properties", {})

    return first_difference(params(generated), params(shipped)) or first_difference(generated, shipped)


# ---- the README's parameter table --------------------------------------------------------------


def parameter_table_markdown() -> str:
    """The registry as the README's Markdown table (``costmodel params --markdown``): defaults and
    bounds in the project's number style."""
    def num(e: registry.Numeric, x) -> str:
        return format_value(int(x) if e.integer else float(x))

    lines = [TABLE_HEADER, "|---|---|---|---|---|---|"]
    for e in registry.PARAMS.values():
        if isinstance(e, registry.Numeric):
            default, bounds = num(e, e.default), f"{num(e, e.low)} .. {num(e, e.high)}"
        else:
            default, bounds = e.default, " | ".join(e.choices)
        lines.append(f"| `{e.name}` | {e.kind} | {e.unit} | {default} | {bounds} | {e.description} |")
    return "\n".join(lines)


def readme_table_span(text: str) -> tuple[int, int]:
    """(first, end) line indices of the parameter table in the README's ``text``."""
    lines = text.splitlines()
    try:
        first = lines.index(TABLE_HEADER)
    except ValueError:
        raise UserError(f"{README}: no parameter table (a line {TABLE_HEADER!r}); put one under"
                        f" '## Parameters' and run `{COMMAND}`") from None
    end = first
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    return first, end


def readme_with_table(text: str, table: str) -> str:
    """The README ``text`` with its parameter table replaced by ``table``."""
    first, end = readme_table_span(text)
    lines = text.splitlines()
    out = "\n".join(lines[:first] + table.splitlines() + lines[end:])
    return out + ("\n" if text.endswith("\n") else "")


def readme_table_difference(text: str, table: str) -> str:
    """What differs between the README's table and ``table``, in a few words ("" if nothing)."""
    first, end = readme_table_span(text)
    have = {l.split("|")[1].strip().strip("`"): l for l in text.splitlines()[first + 2:end] if l.count("|") > 2}
    want = {l.split("|")[1].strip().strip("`"): l for l in table.splitlines()[2:]}
    missing = [n for n in want if n not in have]
    extra = [n for n in have if n not in want]
    changed = [n for n in want if n in have and have[n] != want[n]]
    parts = ([f"lacks {', '.join(missing)}"] if missing else []) + ([f"still has {', '.join(extra)}"] if extra else []) \
        + ([f"row of {', '.join(changed)} differs"] if changed else [])
    if not parts and list(have) != list(want):
        parts = ["rows out of registry order"]
    return "; ".join(parts)


# ---- the artefacts --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Artefact:
    """A group of generated files: ``build()`` yields (path, the text it should hold), one by one."""

    key: str
    label: str
    build: Callable[[], Iterator[tuple[Path, str]]]


def _schema() -> Iterator[tuple[Path, str]]:
    yield schema_path(), json.dumps(json_schema(), indent=2) + "\n"


def _readme() -> Iterator[tuple[Path, str]]:
    if README.is_file():
        yield README, readme_with_table(README.read_text(encoding="utf-8"), parameter_table_markdown())


def _reference() -> Iterator[tuple[Path, str]]:
    from .reference import reference_sets

    for ps in reference_sets(REFERENCE_DIR):
        text = ps.to_json()
        loads(text, f"reference set {ps.name} (about to be written)")
        yield REFERENCE_DIR / f"{ps.name}.json", text


def calibrated_pairs() -> list[tuple[Path, Path]]:
    """(measurement directory, parameter file) of every committed calibrated set that has its
    measurements in the checkout."""
    measurements = DATA_DIR / "measurements"
    return [(measurements / p.stem, p) for p in sorted(PARAMS_DIR.glob("*.json")) if (measurements / p.stem).is_dir()]


def _params() -> Iterator[tuple[Path, str]]:
    from .calibration.adapters import calibrate
    from .calibration.recipes import published_shootdown_shape
    published_shootdown_shape.cache_clear()  # the reference sets may just have been rewritten
    for directory, path in calibrated_pairs():
        text = calibrate(directory, allow_defaults=True).to_json()
        loads(text, f"{path} (about to be written)")
        yield path, text


#: every group of generated files, in the order they are rebuilt (the calibrated sets read the
#: reference sets' published shootdown curve)
ARTEFACTS = (
    Artefact("schema", "the parameter-file schema, from the registry", _schema),
    Artefact("readme", "the README's parameter table, from the registry", _readme),
    Artefact("reference", "the reference sets, from data/reference/*.csv", _reference),
    Artefact("params", "the calibrated sets, calibrated again from data/measurements/<id>/", _params),
)


KEYS = tuple(a.key for a in ARTEFACTS)


def difference(path: Path, old: str | None, new: str) -> str:
    """What changes when ``path`` holding ``old`` is rewritten with ``new``, in a few words."""
    if old is None:
        return "missing"
    if path == README:
        return readme_table_difference(old, parameter_table_markdown())
    try:
        before, after = json.loads(old), json.loads(new)
    except ValueError:
        return ""
    if path == schema_path():
        return schema_difference(before, after)
    if isinstance(before, dict) and isinstance(after, dict):
        changed_hash = before.pop("model_hash", None) != after.pop("model_hash", None)
        return first_difference(after, before) or ("model_hash differs" if changed_hash else "")
    return first_difference(after, before)


def relative_path(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def regenerate(check: bool = False, only: Iterable[str] | None = None,
               progress: Callable[[str], None] | None = None) -> list[Path]:
    """Rebuild the generated files (``only``: some of :data:`KEYS`), writing those that changed
    (atomically), or with ``check`` writing nothing. Returns the files that were (or are) stale."""
    say = progress or (lambda line: print(line, file=sys.stderr, flush=True))
    keys = list(KEYS if only is None else only)
    unknown = [k for k in keys if k not in KEYS]
    if unknown:
        raise UserError(f"--only {unknown[0]!r}: choose among {', '.join(KEYS)}")
    if not (ROOT / "data" / "params").is_dir():
        raise UserError(f"{ROOT} is not a checkout of the repository (no data/params beside the package);"
                        f" {COMMAND} rewrites a checkout's files")
    stale: list[Path] = []
    chosen = [a for a in ARTEFACTS if a.key in keys]
    for i, artefact in enumerate(chosen, 1):
        say(f"[{i}/{len(chosen)}] {artefact.key}: {artefact.label}")
        for path, text in artefact.build():
            old = path.read_text(encoding="utf-8") if path.is_file() else None
            if old == text:
                say(f"  {relative_path(path)}: up to date")
                continue
            stale.append(path)
            why = difference(path, old, text)
            if check:
                say(f"  {relative_path(path)}: STALE" + (f" ({why})" if why else ""))
            else:
                write_atomic(path, text, force=True)
                say(f"  {relative_path(path)}: rewritten" + (f" ({why})" if why else ""))
    return stale
