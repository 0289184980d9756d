#!/usr/bin/env python3
"""The project's safetensors reader and writer against Hugging Face's safetensors library.

Files written by safetensors (every dtype both libraries know, scalars, empty tensors,
metadata, names that sort differently from their dtype order) are read by the project
(reference_probe safetensors-dump): the header size, metadata, every tensor's dtype, shape and
offsets equal safetensors' own header, and its bytes hash the same. The project then writes
each file again (reference_probe safetensors-copy): the copy is byte for byte the file
safetensors wrote (with several metadata keys, whose order safetensors does not fix, the
parsed header and the data), and safetensors reads it back to equal tensors. Last, files the project
writes on its own (`deepsearch model init`) load in safetensors, which writes them back
byte-identical.
"""

import json
import os
import struct

import torch
import xxhash
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import reference_common as rc


def header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return n, json.loads(f.read(n))


def data(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        f.seek(8 + n)
        return f.read()


def random_tensor(gen, dtype, shape):
    if dtype == torch.bool:
        return torch.rand(shape, generator=gen) > 0.5
    if dtype.is_floating_point:
        return (torch.randn(shape, generator=gen) * 3).to(dtype)
    info = torch.iinfo(dtype)
    lo, hi = max(info.min, -(2 ** 62)), min(info.max, 2 ** 62)
    return torch.randint(lo, hi, shape, generator=gen, dtype=torch.int64).to(dtype)


def files():
    """{name: (tensors, metadata)} of the files safetensors writes for the test."""
    gen = torch.Generator().manual_seed(7)
    dtypes = [torch.bool, torch.uint8, torch.int8, torch.float8_e5m2, torch.float8_e4m3fn,
              torch.int16, torch.uint16, torch.float16, torch.bfloat16, torch.int32, torch.uint32,
              torch.float32, torch.float64, torch.int64, torch.uint64]
    every = {f"t_{str(d).split('.')[-1]}": random_tensor(gen, d, (3, 5)) for d in dtypes}
    shapes = {"scalar": torch.tensor(1.5), "empty": torch.zeros(0, 3), "empty2": torch.zeros(2, 0, 4),
              "vector": torch.arange(7, dtype=torch.int32), "cube": random_tensor(gen, torch.float32, (2, 3, 4)),
              "one": torch.ones(1, 1, 1, dtype=torch.bfloat16)}
    # Names whose order disagrees with the dtype order the writer sorts by first.
    mixed = {"a.weight": random_tensor(gen, torch.bfloat16, (4, 4)),
             "b.weight": random_tensor(gen, torch.float32, (4,)),
             "c.ids": random_tensor(gen, torch.int64, (2,)),
             "z": random_tensor(gen, torch.uint8, (9,)),
             "model.layers.10.mlp": random_tensor(gen, torch.float16, (3,)),
             "model.layers.9.mlp": random_tensor(gen, torch.float16, (3,)),
             "ünïcødé.名前": random_tensor(gen, torch.float32, (2,))}
    return {
        "every_dtype": (every, None),
        "shapes": (shapes, {"format": "pt"}),
        "mixed": (mixed, {"format": "pt", "note": "a \"quoted\" ünicode value"}),
        "metadata_keys": (mixed, {"zeta": "1", "alpha": "2", "format": "pt"}),
    }


class SafetensorsParityTest(rc.ScratchTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.cli = rc.binary("DEEPSEARCH_CLI")
        cls.probe = rc.binary("DEEPSEARCH_PROBE")

    def dump(self, path):
        return json.loads(rc.run([self.probe, "safetensors-dump", path]).stdout)

    def check_read(self, path):
        n, theirs = header(path)
        ours = self.dump(path)
        self.assertEqual(ours["header_size"], n)
        self.assertEqual(ours["metadata"], theirs.get("__metadata__") or {})
        raw = data(path)
        listed = {k: v for k, v in theirs.items() if k != "__metadata__"}
        self.assertEqual(sorted(t["name"] for t in ours["tensors"]), sorted(listed))
        for t in ours["tensors"]:
            entry = listed[t["name"]]
            self.assertEqual(t["dtype"], entry["dtype"], t["name"])
            self.assertEqual(t["shape"], entry["shape"], t["name"])
            self.assertEqual(t["data_offsets"], entry["data_offsets"], t["name"])
            begin, end = entry["data_offsets"]
            self.assertEqual(t["xxh3"], xxhash.xxh3_64_hexdigest(raw[begin:end]), t["name"])
        return ours

    def test_their_files(self):
        for name, (tensors, metadata) in files().items():
            with self.subTest(file=name):
                theirs = os.path.join(self.scratch, f"{name}.safetensors")
                save_file(tensors, theirs, metadata=metadata)
                dumped = self.check_read(theirs)
                ours = os.path.join(self.scratch, f"{name}.copy.safetensors")
                rc.run([self.probe, "safetensors-copy", theirs, ours])
                # safetensors keeps the metadata in a Rust HashMap, whose order changes from
                # process to process: with several metadata keys only the parsed header, its
                # size and the data can be the same; otherwise every byte is.
                self.assertEqual(header(ours), header(theirs))
                self.assertEqual(data(ours), data(theirs))
                if len(metadata or {}) <= 1:
                    with open(theirs, "rb") as a, open(ours, "rb") as b:
                        self.assertEqual(a.read(), b.read(), f"{name}: our copy is not safetensors' bytes")
                back = load_file(ours)
                for k, v in tensors.items():
                    self.assertTrue(torch.equal(back[k], v), k)
                with safe_open(ours, "pt") as f:
                    self.assertEqual(f.metadata(), metadata)
                print(f"{name}: {len(dumped['tensors'])} tensors read alike, copy byte-identical")

    def test_our_files(self):
        model = os.path.join(self.scratch, "model")
        rc.run([self.cli, "model", "init", "--preset", "tiny", "--out", model, "--seed", "3"])
        path = os.path.join(model, "model.safetensors")
        self.check_read(path)
        tensors = load_file(path)
        with safe_open(path, "pt") as f:
            metadata = f.metadata()
        again = os.path.join(self.scratch, "again.safetensors")
        save_file(tensors, again, metadata=metadata)
        with open(path, "rb") as a, open(again, "rb") as b:
            self.assertEqual(a.read(), b.read(), "safetensors writes our file differently")
        print(f"model init: {len(tensors)} tensors; safetensors rewrites the file byte-identical")


if __name__ == "__main__":
    rc.main()
