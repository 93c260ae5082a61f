"""Map files: one naming scheme of one model family, as data (TOML), checked when read.

    [scheme]
    name = "ms-zoo"                      # what --map-a / --to call it
    family = "bert"
    title = "MindSpore model zoo BERT"   # one line, printed with every comparison
    source = "mindspore-ai/models ..."   # where the names come from: repository, file, commit
    prefixes = ["bert.bert.", ""]        # stored name = prefix + the names below; the first is written,
                                         # any is accepted on read (default [""])
    extends = "hf"                       # (a user's map) start from this built-in map of the family and
                                         # replace the rules whose canonical tensors it names again

    [[tensor]]                           # canonical tensor(s) <- stored tensor(s); {i}: the layer index
    canonical = "encoder.layer.{i}.attention.self.query.weight"
    stored = "bert_encoder.layers.{i}.attention.attention.query_layer.weight"
    transpose = false                    # the stored matrix is the canonical one transposed (each part's)
    axis = 1                             # where one side is a list: the axis of the fused tensor, in its
                                         # own side's layout, along which the parts lie in list order

    [[tie]]                              # stored full names holding a copy of a canonical tensor: the
    canonical = "transformer.wte.weight" # copies must equal it bit for bit; only the canonical one is kept
    stored = ["lm_head.weight"]

    [[ignore]]                           # stored full names (glob) that are not weights of the model:
    pattern = "lamb_[mv].*"              # reported with the reason, never compared or written
    reason = "LAMB optimizer moments"

Checked on load (BadInput naming the file and the entry): unknown keys, a canonical name that is
not a tensor of the family, a canonical tensor covered twice or not at all, a stored name claimed
twice, {i} on one side only, a list on both sides, a list without its axis.
"""
from __future__ import annotations

import dataclasses
import functools
import tomllib
from pathlib import Path

from harness.core import families
from harness.core.config import ModelConfig
from harness.core.errors import BadInput

MAPS_DIR = Path(__file__).resolve().parent / "maps"
LAYER = "{i}"
_SCHEME_KEYS = {"name", "family", "title", "source", "prefixes", "extends"}
_TOP_KEYS = {"scheme", "tensor", "tie", "ignore"}
_RULE_KEYS = {"canonical", "stored", "transpose", "axis"}


@dataclasses.dataclass(frozen=True)
class Rule:
    """Canonical tensor(s) <- stored tensor(s). One side may list parts of the other side's one
    tensor: stored parts fused into the canonical tensor, or canonical parts fused in the store."""
    canonical: tuple[str, ...]
    stored: tuple[str, ...]
    transpose: bool = False
    axis: int | None = None
    where: str = ""                     # "FILE: [[tensor]] #N", for messages

    @property
    def layered(self) -> bool:
        return LAYER in self.canonical[0]

    def describe(self) -> str:
        """What the rule does, in words (the reports quote it)."""
        t = ", transposed" if self.transpose else ""
        if len(self.stored) > 1:
            return f"fused from {len(self.stored)} stored parts along axis {self.axis}{t}"
        if len(self.canonical) > 1:
            return f"one of {len(self.canonical)} parts along axis {self.axis} of the stored tensor{t}"
        return "transposed" if self.transpose else "renamed"


@dataclasses.dataclass(frozen=True)
class Tie:
    canonical: str
    stored: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Ignore:
    pattern: str
    reason: str


@dataclasses.dataclass(frozen=True)
class Scheme:
    name: str
    family: str
    title: str
    source: str
    prefixes: tuple[str, ...]
    rules: tuple[Rule, ...]
    ties: tuple[Tie, ...] = ()
    ignores: tuple[Ignore, ...] = ()
    path: str = ""

    @property
    def write_prefix(self) -> str:
        return self.prefixes[0]

    @property
    def label(self) -> str:
        return f"{self.family}/{self.name}"


# -- the family's canonical tensors as templates ({i} for the layer index) -------------------------
@functools.cache
def templates(family: str) -> tuple[str, ...]:
    """The family's tensor table with the layer index as {i}, in table order (one layer's tensors once)."""
    fam = families.get(family)
    probe = ModelConfig(family=family, hidden=4, layers=1, heads=1, ffn=4, vocab=4, positions=4,
                        type_vocab=2 if family == "bert" else 0, eps=1e-5, act=fam.ACTIVATION)
    first, generic = fam.layer_prefix(0), fam.layer_prefix(LAYER)
    return tuple(generic + n[len(first):] if n.startswith(first) else n for n in families.param_shapes(probe))


# -- reading ---------------------------------------------------------------------------------------
def builtin_paths() -> dict[tuple[str, str], Path]:
    """(family, scheme name) -> map file, for every built-in map."""
    return {(p.parent.name, p.stem): p for p in sorted(MAPS_DIR.glob("*/*.toml"))}


def builtin_names(family: str | None = None) -> list[str]:
    return list(dict.fromkeys(name for fam, name in builtin_paths() if family in (None, fam)))


@functools.cache
def builtin(family: str, name: str) -> Scheme:
    path = builtin_paths().get((family, name))
    if path is None:
        raise BadInput(f"no built-in {family} naming scheme {name!r}",
                       f"use one of: {', '.join(builtin_names(family))}, or a map file (.toml)")
    return load_file(path)


def candidates(spec: str | Path | None, family: str | None = None) -> list[Scheme]:
    """The schemes `spec` may mean: None -> every built-in one (of `family` if given); a built-in
    name -> that scheme of each family having it; a path -> the map file (its family must agree)."""
    if family:
        families.get(family)   # an unknown family is named before anything else
    if spec is None:
        return [builtin(f, n) for f, n in builtin_paths() if family in (None, f)]
    spec_s = str(spec)
    if spec_s.endswith(".toml") or Path(spec_s).is_file():
        scheme = load_file(Path(spec_s))
        if family and scheme.family != family:
            raise BadInput(f"{spec_s}: a map of {scheme.family} names, but the model is {family}",
                           f"use a {family} map")
        return [scheme]
    found = [builtin(f, n) for f, n in builtin_paths() if n == spec_s and family in (None, f)]
    if not found:
        raise BadInput(f"unknown naming scheme {spec_s!r}" + (f" for {family}" if family else ""),
                       f"use one of: {', '.join(builtin_names(family))}, or a map file (.toml)")
    return found


def load_file(path: Path) -> Scheme:
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise BadInput(f"{path}: map file not found", "check the path of the map (.toml)") from None
    except OSError as e:
        raise BadInput(f"{path}: cannot read the map: {e.strerror or e}",
                       "check the path and its permissions") from None
    except tomllib.TOMLDecodeError as e:
        raise BadInput(f"{path}: not valid TOML: {e}", "fix the syntax at that line") from None
    return parse(data, str(path))


def _strings(value, where: str, key: str) -> tuple[str, ...]:
    """A string or a non-empty list of strings, as a tuple."""
    if isinstance(value, str) and value:
        return (value,)
    if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        return tuple(value)
    raise BadInput(f"{where}: key {key!r} must be a name or a list of names, got {value!r}",
                   f"write {key} = \"...\" or {key} = [\"...\", \"...\"]")


def _table_list(data: dict, key: str, where: str) -> list[dict]:
    rows = data.get(key, [])
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise BadInput(f"{where}: key {key!r} must be an array of tables", f"write each entry as [[{key}]]")
    return rows


def _unknown(table: dict, allowed: set[str], where: str) -> None:
    bad = sorted(set(table) - allowed)
    if bad:
        raise BadInput(f"{where}: unknown key {bad[0]!r}", f"valid keys: {', '.join(sorted(allowed))}")


def parse(data: dict, source: str) -> Scheme:
    """A map file's data -> Scheme, checked (see the module's docstring)."""
    _unknown(data, _TOP_KEYS, source)
    head = data.get("scheme")
    if not isinstance(head, dict):
        raise BadInput(f"{source}: no [scheme] table", "start the map with [scheme] (name, family, ...)")
    _unknown(head, _SCHEME_KEYS, f"{source}: [scheme]")
    family = head.get("family")
    if family not in families.FAMILIES:
        raise BadInput(f"{source}: [scheme] family {family!r} is not a model family",
                       f"use one of: {', '.join(families.FAMILIES)}")
    for key in ("name", "title", "source", "extends"):
        if key in head and not isinstance(head[key], str):
            raise BadInput(f"{source}: [scheme] key {key!r} must be a string", f"quote the {key}")
    prefixes = head.get("prefixes", [""])
    if not (isinstance(prefixes, list) and prefixes and all(isinstance(p, str) for p in prefixes)):
        raise BadInput(f"{source}: [scheme] key 'prefixes' must be a non-empty list of strings",
                       'write prefixes = [""] (no prefix) or e.g. ["bert.bert.", ""]')
    rules = tuple(_rule(r, f"{source}: [[tensor]] #{n + 1}", family)
                  for n, r in enumerate(_table_list(data, "tensor", source)))
    ties = tuple(_tie(t, f"{source}: [[tie]] #{n + 1}", family)
                 for n, t in enumerate(_table_list(data, "tie", source)))
    ignores = tuple(_ignore(g, f"{source}: [[ignore]] #{n + 1}")
                    for n, g in enumerate(_table_list(data, "ignore", source)))
    scheme = Scheme(name=head.get("name") or Path(source).stem, family=family, title=head.get("title", ""),
                    source=head.get("source", ""), prefixes=tuple(prefixes), rules=rules, ties=ties,
                    ignores=ignores, path=source)
    if "extends" in head:
        scheme = _extend(builtin(family, head["extends"]), scheme, "prefixes" in head)
    _check_cover(scheme, source)
    return scheme


def _rule(row: dict, where: str, family: str) -> Rule:
    _unknown(row, _RULE_KEYS, where)
    for key in ("canonical", "stored"):
        if key not in row:
            raise BadInput(f"{where}: missing key {key!r}", f"add {key} = \"...\"")
    canonical, stored = _strings(row["canonical"], where, "canonical"), _strings(row["stored"], where, "stored")
    transpose, axis = row.get("transpose", False), row.get("axis")
    if not isinstance(transpose, bool):
        raise BadInput(f"{where}: key 'transpose' must be true or false, got {transpose!r}", "write transpose = true")
    if len(canonical) > 1 and len(stored) > 1:
        raise BadInput(f"{where}: both canonical and stored are lists", "one side of a rule holds one tensor")
    if (len(canonical) > 1 or len(stored) > 1) != (axis is not None):
        raise BadInput(f"{where}: " + ("a list of parts needs the axis they lie along" if axis is None
                                       else "axis is only for a rule with a list of parts"),
                       "write axis = N (the fused tensor's axis, in its own layout)" if axis is None
                       else "remove axis")
    if axis is not None and (isinstance(axis, bool) or not isinstance(axis, int) or axis < 0):
        raise BadInput(f"{where}: key 'axis' must be a non-negative integer, got {axis!r}", "write axis = 0 or 1")
    layered = {LAYER in name for name in canonical + stored}
    if len(layered) > 1:
        raise BadInput(f"{where}: {LAYER} appears on one side only ({', '.join(canonical + stored)})",
                       f"per-layer tensors carry {LAYER} on both sides, global ones on neither")
    known = set(templates(family))
    for name in canonical:
        if name not in known:
            raise BadInput(f"{where}: canonical name {name!r} is not a {family} tensor",
                           f"use the tensor table's names (harness/core/families/{family}.py), {LAYER} for the layer")
    return Rule(canonical, stored, transpose, axis, where)


def _tie(row: dict, where: str, family: str) -> Tie:
    _unknown(row, {"canonical", "stored"}, where)
    canonical = row.get("canonical")
    if canonical not in templates(family) or LAYER in str(canonical):
        raise BadInput(f"{where}: canonical name {canonical!r} is not a global {family} tensor",
                       "tie a stored copy to one of the tensor table's names (no layer index)")
    return Tie(canonical, _strings(row.get("stored"), where, "stored"))


def _ignore(row: dict, where: str) -> Ignore:
    _unknown(row, {"pattern", "reason"}, where)
    pattern, reason = row.get("pattern"), row.get("reason")
    if not isinstance(pattern, str) or not pattern:
        raise BadInput(f"{where}: missing key 'pattern'", "write pattern = \"glob of stored names\"")
    if not isinstance(reason, str) or not reason.strip():
        raise BadInput(f"{where}: missing key 'reason'", "say why these tensors are not weights of the model")
    return Ignore(pattern, reason.strip())


def _extend(base: Scheme, mine: Scheme, own_prefixes: bool) -> Scheme:
    """base's rules, each one whose canonical tensors `mine` names again replaced by mine (in place)."""
    rules: list[Rule] = []
    placed: set[int] = set()
    for rule in base.rules:
        overlap = [n for n, r in enumerate(mine.rules) if set(r.canonical) & set(rule.canonical)]
        if not overlap:
            rules.append(rule)
        for n in overlap:
            if n not in placed:
                rules.append(mine.rules[n])
                placed.add(n)
    rules += [r for n, r in enumerate(mine.rules) if n not in placed]   # _check_cover names what these break
    return dataclasses.replace(mine, prefixes=mine.prefixes if own_prefixes else base.prefixes, rules=tuple(rules),
                               ties=base.ties + mine.ties, ignores=base.ignores + mine.ignores,
                               source=mine.source or f"extends {base.label} ({base.source})")


def _check_cover(scheme: Scheme, source: str) -> None:
    """Every canonical tensor once; every stored name once."""
    seen: dict[str, str] = {}
    for rule in scheme.rules:
        for name in rule.canonical:
            if name in seen:
                raise BadInput(f"{rule.where}: canonical tensor {name} is also mapped by {seen[name]}",
                               "map each canonical tensor once")
            seen[name] = rule.where
    missing = [t for t in templates(scheme.family) if t not in seen]
    if missing:
        raise BadInput(f"{source}: no rule maps canonical tensor {missing[0]}"
                       + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""),
                       "add a [[tensor]] for it (or `extends` a built-in map)")
    stored: dict[str, str] = {}
    for rule in scheme.rules:
        for name in rule.stored:
            if name in stored:
                raise BadInput(f"{rule.where}: stored name {name} is also claimed by {stored[name]}",
                               "each stored tensor belongs to one rule")
            stored[name] = rule.where
