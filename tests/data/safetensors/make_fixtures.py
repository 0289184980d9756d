#!/usr/bin/env python3
"""Writes the safetensors test fixtures of this folder (see README.md).

Standard library only. Run from anywhere: python3 tests/data/safetensors/make_fixtures.py
The output is deterministic; rerunning it rewrites identical bytes.

The valid files are laid out exactly as the reference writer (huggingface/safetensors,
prepare + serialize) lays them out, independently of the C++ writer, so the C++ tests can
compare the two byte for byte: tensors sorted by dtype (descending enum order) then name,
offsets packed from 0, compact JSON with __metadata__ first, header padded with spaces to a
multiple of 8.
"""

import json
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

# The reference Dtype enum order (the writer sorts by it, descending) and element sizes.
DTYPES = ["BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16", "BF16", "I32",
          "U32", "F32", "F64", "I64", "U64"]
SIZES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2,
         "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "F64": 8, "I64": 8, "U64": 8}


def pad8(text):
    """The header text as bytes, padded with spaces to a multiple of 8."""
    raw = text.encode("utf-8") if isinstance(text, str) else text
    return raw + b" " * (-len(raw) % 8)


def raw_file(header_bytes, data=b"", n=None):
    """A file from an explicit header (bytes, used as is) and data; n overrides the length."""
    if n is None:
        n = len(header_bytes)
    return struct.pack("<Q", n) + header_bytes + data


def compact(obj):
    return json.dumps(obj, separators=(",", ":"))


def reference_layout(tensors, metadata=None):
    """tensors: list of (name, dtype, shape, data bytes). The reference writer's bytes."""
    ordered = sorted(tensors, key=lambda t: (-DTYPES.index(t[1]), t[0]))
    parts = []
    if metadata:
        parts.append('"__metadata__":' + compact(dict(sorted(metadata.items()))))
    offset = 0
    data = b""
    for name, dtype, shape, payload in ordered:
        count = 1
        for d in shape:
            count *= d
        assert len(payload) == count * SIZES[dtype], name
        entry = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(payload)]}
        parts.append(json.dumps(name) + ":" + compact(entry))
        offset += len(payload)
        data += payload
    return raw_file(pad8("{" + ",".join(parts) + "}"), data)


def write(relative, content):
    path = os.path.join(HERE, relative)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(content)


def tensor_file(entries, data):
    """A file whose header is the compact JSON of `entries` (a dict, in the given order)."""
    return raw_file(pad8(compact(entries)), data)


def f32(*values):
    return struct.pack("<%df" % len(values), *values)


def corrupt_fixtures():
    one_f32 = {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}
    return {
        # Fewer than the 8 bytes of the header length.
        "short_file": b"\x05\x00\x00",
        # N = MAX_HEADER_SIZE + 1.
        "header_too_large": raw_file(pad8("{}"), n=100_000_001),
        # N = 64 but only 8 header bytes follow.
        "header_past_eof": raw_file(pad8("{}"), n=64),
        # A 0xFF byte inside a key.
        "not_utf8": raw_file(pad8(b'{"\xff":{}}')),
        # The JSON stops after a key.
        "not_json": raw_file(pad8('{"a":')),
        # Valid JSON, but an array.
        "not_object": raw_file(pad8("[1,2,3]")),
        # A metadata value that is a number.
        "bad_metadata": tensor_file({"__metadata__": {"format": 1}}, b""),
        # A tensor entry that is an array.
        "entry_not_object": tensor_file({"a": [0, 4]}, f32(1)),
        # No data_offsets.
        "missing_offsets": tensor_file({"a": {"dtype": "F32", "shape": [1]}}, f32(1)),
        # An OCP MX dtype of newer safetensors versions, not supported here.
        "bad_dtype": tensor_file({"a": {"dtype": "F8_E8M0", "shape": [1],
                                        "data_offsets": [0, 1]}}, b"\x7f"),
        # A negative dimension.
        "negative_dim": tensor_file({"a": {"dtype": "F32", "shape": [2, -2],
                                           "data_offsets": [0, 0]}}, b""),
        # A fractional dimension.
        "fractional_dim": tensor_file({"a": {"dtype": "F32", "shape": [1.5],
                                             "data_offsets": [0, 4]}}, f32(1)),
        # Three offsets.
        "offsets_not_pair": tensor_file({"a": {"dtype": "F32", "shape": [1],
                                               "data_offsets": [0, 4, 8]}}, f32(1)),
        # begin > end.
        "offsets_reversed": tensor_file({"a": {"dtype": "U8", "shape": [0],
                                               "data_offsets": [4, 0]}}, b""),
        # 2^32 * 2^32 elements overflow 64 bits.
        "shape_overflow": tensor_file({"a": {"dtype": "U8", "shape": [2**32, 2**32],
                                             "data_offsets": [0, 0]}}, b""),
        # [2, 2] F32 needs 16 bytes; the offsets give 12.
        "size_mismatch": tensor_file({"a": {"dtype": "F32", "shape": [2, 2],
                                            "data_offsets": [0, 12]}}, f32(1, 2, 3)),
        # The same tensor name twice (json.dumps of a dict cannot say that: raw text).
        "duplicate_name": raw_file(pad8(
            '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
            '"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}'), f32(1, 2)),
        # b begins at 8, a ends at 4.
        "gap": tensor_file({"a": one_f32,
                            "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}},
                           f32(1, 2, 3)),
        # b begins at 4, inside a = [0, 8).
        "overlap": tensor_file({"a": {"dtype": "U8", "shape": [8], "data_offsets": [0, 8]},
                                "b": {"dtype": "U8", "shape": [8], "data_offsets": [4, 12]}},
                               bytes(range(12))),
        # The tensors cover 4 bytes; 8 follow the header.
        "trailing_bytes": tensor_file({"a": one_f32}, f32(1, 2)),
        # The tensors need 16 bytes; 12 follow the header.
        "truncated_buffer": tensor_file({"a": {"dtype": "F32", "shape": [4],
                                               "data_offsets": [0, 16]}}, f32(1, 2, 3)),
        # 128 nested arrays in an ignored field (serde_json's recursion limit).
        "nesting_too_deep": tensor_file(
            {"a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1],
                   "x": json.loads("[" * 126 + "]" * 126)}}, b"\x01"),
    }


def valid_fixtures():
    bf16 = struct.pack("<3H", 0x3F80, 0xC000, 0x3F00)  # 1.0, -2.0, 0.5
    ids = struct.pack("<2q", -1, 2**40)
    return {
        # A scalar (shape []) and an empty [0, 3] tensor, both F32.
        "scalar_and_empty": reference_layout([
            ("scalar", "F32", [], f32(1.5)),
            ("empty", "F32", [0, 3], b""),
        ]),
        # Three dtypes and metadata.
        "mixed": reference_layout([
            ("weight", "F32", [2, 2], f32(1, 2, 3, 4)),
            ("bf", "BF16", [3], bf16),
            ("ids", "I64", [2], ids),
        ], {"format": "pt"}),
        # Another writer's file: keys not in offset order, whitespace before the brace,
        # header not padded (N = 157, so the data starts unaligned).
        "unpadded_unordered": raw_file(
            (' {"z":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},'
             '"a":{"dtype":"U8","shape":[3],"data_offsets":[2,5]},"m":{"dtype":"U8",'
             '"shape":[],"data_offsets":[5,6]}}').encode(), bytes([1, 2, 3, 4, 5, 6])),
    }


def index_text(weight_map, total_size):
    return (json.dumps({"metadata": {"total_size": total_size}, "weight_map": weight_map},
                       indent=2, sort_keys=True) + "\n").encode()


def checkpoint_dirs():
    shard1 = reference_layout([("a", "F32", [2], f32(1, 2)),
                               ("b", "U8", [3], bytes([7, 8, 9]))], {"format": "pt"})
    shard2 = reference_layout([("c", "I32", [1], struct.pack("<i", -5))], {"format": "pt"})
    s1, s2 = "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"
    return {
        # Two shards and their index.
        "sharded": {s1: shard1, s2: shard2,
                    "model.safetensors.index.json": index_text({"a": s1, "b": s1, "c": s2}, 15)},
        # The index names a second shard that is not there.
        "index_missing_shard": {
            s1: shard1,
            "model.safetensors.index.json": index_text({"a": s1, "b": s1, "c": s2}, 15)},
        # The index lists tensor z in shard 1, which does not hold it.
        "index_missing_tensor": {
            s1: shard1, s2: shard2,
            "model.safetensors.index.json":
                index_text({"a": s1, "b": s1, "c": s2, "z": s1}, 15)},
        # Shard 1 holds b, which the index does not list.
        "index_unlisted_tensor": {
            s1: shard1, s2: shard2,
            "model.safetensors.index.json": index_text({"a": s1, "c": s2}, 12)},
    }


def main():
    for sub in ["corrupt", "valid"] + list(checkpoint_dirs()):
        shutil.rmtree(os.path.join(HERE, sub), ignore_errors=True)
    for name, content in corrupt_fixtures().items():
        write(os.path.join("corrupt", name + ".safetensors"), content)
    for name, content in valid_fixtures().items():
        write(os.path.join("valid", name + ".safetensors"), content)
    for directory, files in checkpoint_dirs().items():
        for name, content in files.items():
            write(os.path.join(directory, name), content)


if __name__ == "__main__":
    main()
