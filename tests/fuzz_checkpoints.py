"""Child process of tests/test_fuzz.py: seeded corruptions of tiny checkpoints, fed to both loaders.

    python tests/fuzz_checkpoints.py WORKDIR SEED COUNT [START]

For each case i in [START, COUNT) it writes the corrupted file, prints one JSON line
{"i", "start": description} before loading it and one {"i", "outcome", "detail"} after,
so the parent can name the case if this process crashes or hangs. Outcomes:
- "bad_input": both frameworks' loaders (models_pt.io.load, models_ms.io.load, which read
  through harness.core.formats.checkpoint) raised BadInput naming the file (a config case: config.json or
  the weights file beside it);
- "loaded": both loaded, and every tensor equals what the file really holds (decoded here
  independently: json + numpy for safetensors, protobuf for .ckpt; a .bin must equal the
  original, since its zip CRCs cover every byte);
- and for a weights file, expand's streamed source reader (harness/kinds/growth/stream.py
  Source, harness.core.formats.tensor_source) must end the same way: BadInput naming the file, or
  the loaders' very tensors;
- "wrong": anything else (another exception, a load that differs from the file, a file whose
  checksum (a .ckpt's crc_num trailer, MindSpore's crc_num in safetensors metadata) does not
  match its content loading at all, the two frameworks disagreeing): a test failure.

Formats, by case number: safetensors, .ckpt, .bin and config.json (a model folder whose
config.json is damaged, loaded without a given config; 3 : 3 : 1 : 1). Issue 20 added JSON
nested too deep for Python's parser (headers and configs), non-UTF-8 bytes, and checksums
(valid, stale after a flipped byte, damaged).
"""
from __future__ import annotations

import json
import struct
import sys
import traceback
import zlib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.core.config import ModelConfig  # noqa: E402
from harness.core.errors import BadInput  # noqa: E402
from harness.core.seeded_init import init_state  # noqa: E402

MICRO = {
    "bert": ModelConfig(family="bert", hidden=16, layers=1, heads=1, ffn=32, vocab=40, positions=16, type_vocab=2,
                        eps=1e-12, act="gelu", name="fuzz micro bert"),
    "gpt2": ModelConfig(family="gpt2", hidden=16, layers=1, heads=1, ffn=32, vocab=40, positions=16, type_vocab=0,
                        eps=1e-5, act="gelu_new", name="fuzz micro gpt2"),
}
ST_NP = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "U64": np.uint64,
         "I32": np.int32, "U32": np.uint32, "I16": np.int16, "U16": np.uint16, "I8": np.int8, "U8": np.uint8,
         "BOOL": np.bool_}
CKPT_NP = {"Float32": np.float32, "Float16": np.float16, "Float64": np.float64, "Int8": np.int8, "UInt8": np.uint8,
           "Int16": np.int16, "UInt16": np.uint16, "Int32": np.int32, "UInt32": np.uint32, "Int64": np.int64,
           "UInt64": np.uint64, "Bool": np.bool_}


# -- pristine files, written by the tool's own writers ------------------------------------
def pristine(workdir: Path) -> dict:
    import torch

    from harness.suite import frameworks
    out = {}
    for family, cfg in MICRO.items():
        state = init_state(cfg, 5)
        folder = workdir / "pristine" / family
        pt, ms = frameworks.load("pt"), frameworks.load("ms")
        pt.io.save(folder, cfg, {k: pt.io.to_tensor(v) for k, v in state.items()})
        ms.io.save(folder, cfg, {k: ms.io.to_tensor(v.copy()) for k, v in state.items()})
        torch.save({k: torch.from_numpy(v) for k, v in state.items()}, folder / "pytorch_model.bin")
        out[family] = {"cfg": cfg, "state": state,
                       "safetensors": (folder / "model.safetensors").read_bytes(),
                       "ckpt": (folder / "model.ckpt").read_bytes(),
                       "bin": (folder / "pytorch_model.bin").read_bytes(),
                       "config": (folder / "config.json").read_bytes()}
    return out


# -- corruptions ---------------------------------------------------------------------------
def _flip(data: bytes, rng, lo: int = 0, hi: int | None = None, count: int | None = None) -> tuple[bytes, str]:
    buf = bytearray(data)
    hi = len(buf) if hi is None else hi
    where = sorted(int(p) for p in rng.integers(lo, hi, size=count or int(rng.integers(1, 5))))
    for p in where:
        buf[p] ^= int(rng.integers(1, 256))
    return bytes(buf), f"bytes flipped at {where}"


def _truncate(data: bytes, rng, lo: int = 0, hi: int | None = None) -> tuple[bytes, str]:
    cut = int(rng.integers(lo, len(data) if hi is None else hi))
    return data[:cut], f"truncated to {cut} of {len(data)} bytes"


def _extend(data: bytes, rng) -> tuple[bytes, str]:
    extra = rng.integers(0, 256, size=int(rng.integers(1, 64)), dtype=np.uint8).tobytes()
    return data + extra, f"{len(extra)} random bytes appended"


def _st_split(data: bytes):
    n = struct.unpack("<Q", data[:8])[0]
    return n, json.loads(data[8:8 + n]), data[8 + n:]


def _st_join(header, body: bytes) -> bytes:
    head = json.dumps(header).encode() if not isinstance(header, bytes) else header
    return struct.pack("<Q", len(head)) + head + body


def corrupt_safetensors(data: bytes, rng) -> tuple[bytes, str]:
    n, header, body = _st_split(data)
    names = [k for k in header if k != "__metadata__"]
    name = names[int(rng.integers(len(names)))]
    kind = rng.choice(["flip", "flip_header", "flip_data", "truncate", "truncate_header", "extend", "hdr_len",
                       "hdr_dtype", "hdr_shape", "hdr_offsets", "hdr_swap", "hdr_drop", "hdr_rename", "hdr_garbage",
                       "hdr_nested", "hdr_not_utf8", "hdr_crc"])
    if kind == "hdr_nested":
        return _st_nested(header, body, rng)
    if kind == "hdr_not_utf8":
        bad = bytes(rng.choice([b"\xff", b"\xc3(", b"\xed\xa0\x80", b"\xe9t\xe9", b"\x80"]))
        head = json.dumps(header).encode().replace(b'"format"', b'"form' + bad + b'at"', 1)
        return _st_join(head, body), f"header metadata key holds the non-UTF-8 bytes {bad!r}"
    if kind == "hdr_crc":
        return _st_crc(header, body, rng)
    if kind == "flip":
        return _flip(data, rng)
    if kind == "flip_header":
        return _flip(data, rng, 0, 8 + n, count=int(rng.integers(1, 3)))
    if kind == "flip_data":
        return _flip(data, rng, 8 + n)
    if kind == "truncate":
        return _truncate(data, rng)
    if kind == "truncate_header":
        return _truncate(data, rng, 0, 8 + n + 1)
    if kind == "extend":
        return _extend(data, rng)
    if kind == "hdr_len":
        options = [0, 1, n - 1, n + 1, n + 8, len(data), 2 ** 63, 2 ** 64 - 1, int(rng.integers(0, 2 ** 40))]
        value = options[int(rng.integers(len(options)))]
        return struct.pack("<Q", value) + data[8:], f"header length {n} -> {value}"
    entry = header[name]
    if kind == "hdr_dtype":
        entry["dtype"] = str(rng.choice(["F16", "F64", "I32", "U32", "BF16", "F8_E4M3", "BOOL", "U8", "XX", ""]))
        return _st_join(header, body), f"{name}: dtype F32 -> {entry['dtype']!r}"
    if kind == "hdr_shape":
        shape = list(entry["shape"])
        choice = int(rng.integers(8))
        new = [shape + [1], shape[:-1], [s * 2 for s in shape], [max(s - 1, 0) for s in shape], [0],
               [2 ** 40] * len(shape), [-1] + shape[1:], "x"][choice]
        entry["shape"] = new
        return _st_join(header, body), f"{name}: shape {shape} -> {new}"
    if kind == "hdr_offsets":
        a, b = entry["data_offsets"]
        new = [[a + 4, b + 4], [a - 4, b - 4], [b, a], [a, len(body) + 4], [0, 0], [-4, b], [a, 2 ** 62],
               [a, b + 4]][int(rng.integers(8))]
        entry["data_offsets"] = new
        return _st_join(header, body), f"{name}: data_offsets {[a, b]} -> {new}"
    if kind == "hdr_swap":
        other = names[int(rng.integers(len(names)))]
        entry["data_offsets"], header[other]["data_offsets"] = header[other]["data_offsets"], entry["data_offsets"]
        return _st_join(header, body), f"data_offsets of {name} and {other} swapped"
    if kind == "hdr_drop":
        del header[name]
        return _st_join(header, body), f"{name} removed from the header"
    if kind == "hdr_rename":
        new = str(rng.choice(["x", name + ".x", names[0], "\u00e9", ""]))
        header = {(new if k == name else k): v for k, v in header.items()}
        return _st_join(header, body), f"{name} renamed {new!r}"
    garbage = [b"not json", b"[1, 2]", b"\xff\xfe\x00", b'{"__metadata__": 3}', b"{}", b'{"a": 1}',
               json.dumps({name: entry, name + "2": 7}).encode()][int(rng.integers(7))]
    return _st_join(garbage, body), f"header replaced by {garbage[:40]!r}"


def _deep(depth: int, rng) -> bytes:
    """Valid JSON nested `depth` deep: arrays, objects or both."""
    shape = int(rng.integers(3))
    if shape == 0:
        return b"[" * depth + b"]" * depth
    if shape == 1:
        return b'{"a":' * depth + b"1" + b"}" * depth
    return b'[{"a":' * (depth // 2) + b"0" + b"}]" * (depth // 2)


DEPTHS = (100, 150, 2_000, 20_000, 200_000)   # the library refuses past 128; Python's parser past ~1000


def _st_nested(header: dict, body: bytes, rng) -> tuple[bytes, str]:
    depth = int(rng.choice(DEPTHS))
    deep = _deep(depth, rng)
    where = str(rng.choice(["metadata", "entry", "document"]))
    if where == "document":
        head = deep
    else:
        text = json.dumps(header).encode()
        key = b'"__metadata__": {' if where == "metadata" else b'"dtype": "F32"'
        at = text.index(key) + len(key)
        head = text[:at] + (b'"deep": ' + deep + b", " if where == "metadata" else b', "deep": ' + deep) + text[at:]
    return _st_join(head, body), f"JSON nested {depth} deep in the header ({where})"


def st_crc(header: dict, body: bytes) -> int:
    """MindSpore's safetensors checksum: CRC-32 of every name and its tensor's bytes, names sorted."""
    crc = 0
    for name in sorted(k for k in header if k != "__metadata__"):
        a, b = header[name]["data_offsets"]
        crc = zlib.crc32(body[a:b], zlib.crc32(name.encode(), crc))
    return crc


def _st_crc(header: dict, body: bytes, rng) -> tuple[bytes, str]:
    header["__metadata__"] = {"format": "ms", "crc_num": str(st_crc(header, body))}
    how = str(rng.choice(["valid", "stale", "damaged"]))
    if how == "stale":
        body, where = _flip(body, rng, count=1)
        return _st_join(header, body), f"MindSpore crc_num in the metadata, then data {where}"
    if how == "damaged":
        header["__metadata__"]["crc_num"] = str(int(header["__metadata__"]["crc_num"]) ^ (1 << int(rng.integers(32))))
        return _st_join(header, body), "MindSpore crc_num in the metadata, one bit of it flipped"
    return _st_join(header, body), "a valid MindSpore crc_num in the metadata"


def _ckpt_values(data: bytes):
    from mindspore.train.checkpoint_pb2 import Checkpoint
    values = []
    pos = 0
    msg = Checkpoint()
    msg.ParseFromString(data)
    for v in msg.value:                                   # the file is the concatenation of one-value messages
        one = Checkpoint()
        one.value.add().CopyFrom(v)
        raw = one.SerializeToString()
        assert data[pos:pos + len(raw)] == raw
        values.append((v, pos, pos + len(raw)))
        pos += len(raw)
    assert pos == len(data)
    return values


def _ckpt_join(values) -> bytes:
    from mindspore.train.checkpoint_pb2 import Checkpoint
    out = b""
    for v in values:
        one = Checkpoint()
        one.value.add().CopyFrom(v)
        out += one.SerializeToString()
    return out


def corrupt_ckpt(data: bytes, rng) -> tuple[bytes, str]:
    values = _ckpt_values(data)
    k = int(rng.integers(len(values)))
    value, start, stop = values[k]
    tag = value.tag
    kind = rng.choice(["flip", "flip_framing", "truncate", "truncate_boundary", "extend", "dims", "type",
                       "content", "tag", "drop", "duplicate", "swap", "maptensor", "no_tensor", "crc",
                       "crc_valid", "crc_stale", "crc_damaged", "tag_not_utf8"])
    if kind.startswith("crc_"):                            # MindSpore's save_checkpoint(..., crc_check=True)
        signed = data + b"crc_num" + zlib.crc32(data).to_bytes(10, "big")
        if kind == "crc_valid":
            return signed, "a valid crc_num trailer appended"
        if kind == "crc_stale":
            damaged, where = _flip(data, rng, count=1)
            return damaged + signed[len(data):], f"a valid crc_num trailer appended, then {where}"
        at = len(signed) - 1 - int(rng.integers(4))
        return signed[:at] + bytes([signed[at] ^ 1]) + signed[at + 1:], f"crc_num trailer with byte {at} flipped"
    if kind == "tag_not_utf8":
        name = tag.encode()
        bad = bytes(rng.choice([b"\xff", b"\xc3(", b"\x80"]))
        return data.replace(name, name[:-len(bad)] + bad, 1), f"entry {tag}: name bytes end in non-UTF-8 {bad!r}"
    if kind == "flip":
        return _flip(data, rng)
    if kind == "flip_framing":                             # key / length / name / dims / type bytes of one entry
        framing_end = stop - len(value.tensor.tensor_content)
        return _flip(data, rng, start, framing_end, count=1)
    if kind == "truncate":
        return _truncate(data, rng)
    if kind == "truncate_boundary":
        cut = max(0, start + int(rng.integers(-2, 3)))
        return data[:cut], f"truncated at byte {cut} (entry {tag} starts at {start})"
    if kind == "extend":
        return _extend(data, rng)
    vals = [v for v, _, _ in values]
    if kind == "dims":
        old = list(value.tensor.dims)
        new = [old + [1], old[:-1], [d * 2 for d in old], [max(d - 1, 0) for d in old], [0], [2 ** 40] * len(old),
               [-1] + old[1:], old[::-1], []][int(rng.integers(9))]
        del value.tensor.dims[:]
        value.tensor.dims.extend(new)
        return _ckpt_join(vals), f"{tag}: dims {old} -> {new}"
    if kind == "type":
        new = str(rng.choice(["Float64", "Float16", "Int32", "BFloat16", "Bool", "str", "Int4", "Bogus", ""]))
        value.tensor.tensor_type = new
        return _ckpt_join(vals), f"{tag}: tensor_type Float32 -> {new!r}"
    if kind == "content":
        content = value.tensor.tensor_content
        cut = int(rng.integers(-8, 9)) or 4
        value.tensor.tensor_content = content[:cut] if cut < 0 else content + b"\0" * cut
        return _ckpt_join(vals), f"{tag}: tensor_content {len(content)} -> {len(value.tensor.tensor_content)} bytes"
    if kind == "tag":
        new = str(rng.choice(["x", tag + ".x", vals[0].tag, vals[-1].tag, ""]))
        value.tag = new
        return _ckpt_join(vals), f"entry {tag} renamed {new!r}"
    if kind == "drop":
        del vals[k]
        return _ckpt_join(vals), f"entry {tag} removed"
    if kind == "duplicate":
        where = int(rng.integers(len(vals) + 1))
        vals.insert(where, vals[k])
        return _ckpt_join(vals), f"entry {tag} repeated at position {where}"
    if kind == "swap":
        j = int(rng.integers(len(vals)))
        vals[k], vals[j] = vals[j], vals[k]
        return _ckpt_join(vals), f"entries {tag} and {vals[k].tag} swapped"
    if kind == "maptensor":
        tensor = type(value.tensor)()
        tensor.CopyFrom(value.tensor)
        value.maptensor.tensor.add().CopyFrom(tensor)      # the oneof drops value.tensor
        return _ckpt_join(vals), f"{tag}: tensor replaced by a map tensor"
    if kind == "no_tensor":
        value.ClearField("tensor")
        return _ckpt_join(vals), f"{tag}: tensor removed from its entry"
    trailer = [b"crc_num" + (123456).to_bytes(10, "big"), b"crc_num" + b"\xff" * 12, b"crc_nul" + b"\0" * 10,
               b"crc_num"][int(rng.integers(4))]
    return data + trailer, f"trailer {trailer!r} appended"


def corrupt_config(data: bytes, rng) -> tuple[bytes, str]:
    """A damaged config.json (the weights beside it are whole)."""
    hf = json.loads(data)
    kind = rng.choice(["nested_value", "nested_document", "not_utf8", "latin1", "utf16", "bom", "flip", "truncate",
                       "reformat", "extra_key", "unicode_value", "drop_key", "wrong_type", "null_byte", "huge_number"])
    if kind == "nested_value":
        depth = int(rng.choice(DEPTHS))
        return data.rstrip()[:-1] + b', "deep": ' + _deep(depth, rng) + b"}", f"JSON nested {depth} deep in a value"
    if kind == "nested_document":
        depth = int(rng.choice(DEPTHS))
        return _deep(depth, rng), f"the document is JSON nested {depth} deep"
    if kind == "not_utf8":
        bad = bytes(rng.choice([b"\xff", b"\xfe\xff", b"\xc3(", b"\xed\xa0\x80", b"\x80abc"]))
        return data.replace(b'"model_type"', b'"model' + bad + b'_type"', 1), f"a key holds non-UTF-8 bytes {bad!r}"
    if kind == "latin1":
        return json.dumps({**hf, "name": "caf\u00e9"}, ensure_ascii=False).encode("latin-1"), "Latin-1 bytes"
    if kind == "utf16":
        return data.decode().encode("utf-16"), "encoded as UTF-16"
    if kind == "bom":
        return b"\xef\xbb\xbf" + data, "a UTF-8 byte-order mark first"
    if kind == "flip":
        return _flip(data, rng, count=1)
    if kind == "truncate":
        return _truncate(data, rng)
    if kind == "reformat":
        return json.dumps(dict(reversed(list(hf.items()))), indent=int(rng.integers(0, 5))).encode(), "keys reordered"
    if kind == "extra_key":
        return json.dumps({**hf, "torch_dtype": "float32", "x": [1, {"y": None}]}).encode(), "unknown keys added"
    if kind == "unicode_value":
        text = json.dumps({**hf, "name": "\u00e9\u4e2d\U0001f600"}, ensure_ascii=False)
        return text.encode(), "UTF-8 text in a value"
    key = str(rng.choice(sorted(hf)))
    if kind == "drop_key":
        return json.dumps({k: v for k, v in hf.items() if k != key}).encode(), f"key {key} removed"
    if kind == "wrong_type":
        value = [None, "64", [64], {"a": 1}, True, 1.5, -1][int(rng.integers(7))]
        return json.dumps({**hf, key: value}).encode(), f"{key} -> {value!r}"
    if kind == "null_byte":
        return data.replace(b'"model_type"', b'"model\x00_type"', 1), "a NUL byte in a key"
    value = [10 ** 400, 2 ** 64, -(2 ** 63), 1e308, float("inf")][int(rng.integers(5))]
    text = json.dumps({**hf, key: value}).replace("Infinity", "1e999")
    return text.encode(), f"{key} -> {value!r}"


def decode_config(data: bytes) -> dict | None:
    """What a loaded config.json must have been: UTF-8 text of a JSON object."""
    try:
        hf = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return hf if isinstance(hf, dict) else None


def corrupt_bin(data: bytes, rng) -> tuple[bytes, str]:
    kind = rng.choice(["flip", "truncate", "extend"])
    return {"flip": _flip, "truncate": _truncate, "extend": _extend}[kind](data, rng)


# -- the truth: what each corrupted file really holds ----------------------------------------
def decode_safetensors(data: bytes) -> dict[str, np.ndarray] | None:
    try:
        n, header, body = _st_split(data)
        meta = header.get("__metadata__")
        if isinstance(meta, dict) and meta.get("format") == "ms" and "crc_num" in meta:
            if str(st_crc(header, body)) != str(meta["crc_num"]):
                return None                                # a stale checksum must not load
        out = {}
        for name, e in header.items():
            if name == "__metadata__":
                continue
            a, b = e["data_offsets"]
            dtype = np.dtype(ST_NP[e["dtype"]])
            if not 0 <= a <= b <= len(body) or int(np.prod(e["shape"])) * dtype.itemsize != b - a:
                return None
            out[name] = np.frombuffer(body[a:b], dtype).reshape(e["shape"])
        return out
    except Exception:
        return None


def decode_ckpt(data: bytes) -> dict[str, np.ndarray] | None:
    from mindspore.train.checkpoint_pb2 import Checkpoint
    try:
        if data[-17:-10] == b"crc_num":
            if zlib.crc32(data[:-17]) != int.from_bytes(data[-10:], "big"):
                return None                                # a stale checksum must not load
            data = data[:-17]
        msg = Checkpoint()
        msg.ParseFromString(data)
        chunks: dict[str, list] = {}
        for v in msg.value:
            chunks.setdefault(v.tag, []).append(v)
        out = {}
        for tag, parts in chunks.items():
            t = parts[0].tensor
            dtype = np.dtype(CKPT_NP[t.tensor_type])
            dims = [] if list(t.dims) == [0] else list(t.dims)
            content = b"".join(p.tensor.tensor_content for p in parts)
            if int(np.prod(dims)) * dtype.itemsize != len(content):
                return None
            out[tag] = np.frombuffer(content, dtype).reshape(dims)
        return out
    except Exception:
        return None


# -- one case ------------------------------------------------------------------------------
def run_case(i: int, seed: int, files: dict, workdir: Path) -> tuple[str, str, str]:
    """(description, outcome, detail) of case i."""
    from harness.suite import frameworks
    rng = np.random.default_rng([seed, i])
    family = "bert" if i % 2 == 0 else "gpt2"
    fmt = ["safetensors", "ckpt", "safetensors", "ckpt", "safetensors", "ckpt", "bin", "config"][i % 8]
    pristine_bytes = files[family][fmt]
    corrupt = {"safetensors": corrupt_safetensors, "ckpt": corrupt_ckpt, "bin": corrupt_bin,
               "config": corrupt_config}[fmt]
    data, what = corrupt(pristine_bytes, rng)
    path = workdir / f"case{i:04d}_{family}.{fmt}"
    if fmt == "config":                  # a model folder: the damaged config.json, the whole weights
        path.mkdir()
        (path / "config.json").write_bytes(data)
        (path / "model.safetensors").write_bytes(files[family]["safetensors"])
        named = (str(path / "config.json"), str(path / "model.safetensors"))
    else:
        path.write_bytes(data)
        named = (str(path),)
    description = f"{path.name}: {what}"
    print(json.dumps({"i": i, "start": description}), flush=True)

    cfg, original = files[family]["cfg"], files[family]["state"]
    allow_nonfinite = bool(i % 3 == 0)
    results, configs = {}, {}
    for name in ("pt", "ms"):
        fw = frameworks.load(name)
        try:
            configs[name], state = fw.io.load(path, None if fmt == "config" else cfg, allow_nonfinite=allow_nonfinite)
            results[name] = ("loaded", {k: fw.io.to_numpy(t) for k, t in state.items()})
        except BadInput as e:
            if not any(n in e.what for n in named) or not e.fix:
                return description, "wrong", f"{name}: BadInput without the file name or a fix: {e}"
            results[name] = ("bad_input", e.what)
        except Exception as e:
            return description, "wrong", f"{name}: {type(e).__name__}: {e}\n{traceback.format_exc()}"
    (pt_kind, pt_val), (ms_kind, ms_val) = results["pt"], results["ms"]
    if pt_kind != ms_kind:
        said = pt_val if pt_kind == 'bad_input' else ms_val
        return description, "wrong", f"PyTorch {pt_kind}, MindSpore {ms_kind}: {said}"
    if fmt != "config":                  # expand's streamed source reader (a config is read as the loaders read it)
        try:
            st_kind, st_val = "loaded", read_streamed(path, cfg, allow_nonfinite, workdir)
        except BadInput as e:
            if not any(n in e.what for n in named) or not e.fix:
                return description, "wrong", f"streamed: BadInput without the file name or a fix: {e}"
            st_kind, st_val = "bad_input", e.what
        except Exception as e:
            return description, "wrong", f"streamed: {type(e).__name__}: {e}\n{traceback.format_exc()}"
        if st_kind != pt_kind:
            said = st_val if st_kind == "bad_input" else pt_val
            return description, "wrong", f"the loaders {pt_kind}, the streamed reader {st_kind}: {said}"
        if st_kind == "loaded" and any(st_val[k].tobytes() != pt_val[k].tobytes() for k in pt_val):
            return description, "wrong", "the streamed reader read other tensors than the loaders"
    if pt_kind == "bad_input":
        _remove(path)
        return description, "bad_input", pt_val
    if fmt == "config":
        hf = decode_config(data)
        if hf is None:
            return description, "wrong", "loaded, but config.json is not UTF-8 text of a JSON object"
        if not configs["pt"] == configs["ms"] == ModelConfig.from_hf(hf, source=str(path / "config.json")):
            return description, "wrong", f"loaded a config other than the file's: {configs['pt']}"
    truth = {"safetensors": decode_safetensors, "ckpt": decode_ckpt}.get(fmt, lambda _: original)(data)
    if truth is None:
        return description, "wrong", "loaded, but the file's own framing does not decode to these tensors"
    for name in original:
        want = truth.get(name)
        for side, got in (("PyTorch", pt_val[name]), ("MindSpore", ms_val[name])):
            if want is None or got.shape != want.shape or got.dtype != want.dtype or got.tobytes() != want.tobytes():
                return description, "wrong", f"{side} loaded {name} differently from what the file holds"
    _remove(path)
    return description, "loaded", "every tensor equals the file's content"


def read_streamed(path: Path, cfg: ModelConfig, allow_nonfinite: bool, workdir: Path) -> dict[str, np.ndarray]:
    """Every tensor of cfg's table as `expand` reads its source (harness/kinds/growth/stream.py: the
    header or framing checked, then each tensor read on demand and checked finite)."""
    from harness.core.families import param_shapes
    from harness.kinds.growth import stream
    source = stream.Source.open(path, cfg, 0, workdir, allow_nonfinite)
    try:
        return {name: np.array(source.tensors[name]) for name in param_shapes(cfg)}
    finally:
        source.close()


def _remove(path: Path) -> None:
    if path.is_dir():
        for child in path.iterdir():
            child.unlink()
        path.rmdir()
    else:
        path.unlink()


def main() -> None:
    workdir, seed, count = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    start = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    files = pristine(workdir)
    print(json.dumps({"ready": True}), flush=True)
    for i in range(start, count):
        description, outcome, detail = run_case(i, seed, files, workdir)
        print(json.dumps({"i": i, "description": description, "outcome": outcome, "detail": detail}), flush=True)


if __name__ == "__main__":
    main()
