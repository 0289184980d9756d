"""Shared pieces of the reference tests (tests/reference/test_*.py).

The tests hold the project's C++ against Hugging Face's own Python libraries (transformers,
tokenizers, safetensors, from the project's Python environment .venv). CTest runs each file
with .venv/bin/python and names the binaries under test in the environment:

    DEEPSEARCH_CLI     the deepsearch binary
    DEEPSEARCH_PROBE   tests/reference's reference_probe binary

Run one by hand from the repository root:

    DEEPSEARCH_CLI=build/cli/deepsearch DEEPSEARCH_PROBE=build/tests/reference_probe \\
        .venv/bin/python tests/reference/test_qwen2_parity.py -v
"""

import json
import os
import subprocess
import sys
import tempfile
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
QWEN_TOKENIZER = os.path.join(REPO, "tests", "data", "tokenizers", "qwen3", "tokenizer.json")


def binary(variable):
    path = os.environ.get(variable)
    if not path or not os.access(path, os.X_OK):
        raise SystemExit(f"{variable} must name the binary under test (got {path!r})")
    return path


def run(argv, stdin=None, check=True):
    """Runs a command; returns its stdout. A failure raises with the command's stderr."""
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr[-4000:]}")
    return done


def write_json(path, value):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(value, f)


class ScratchTestCase(unittest.TestCase):
    """A test case with a scratch folder for the whole class (models are large)."""

    @classmethod
    def setUpClass(cls):
        cls._scratch = tempfile.TemporaryDirectory(prefix="deepsearch-reference-")
        cls.scratch = cls._scratch.name

    @classmethod
    def tearDownClass(cls):
        cls._scratch.cleanup()


def main():
    # Nothing is downloaded, and transformers' progress bars stay out of the test log.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        from transformers.utils import logging as hf_logging
        hf_logging.disable_progress_bar()
    except ImportError:
        pass
    # One torch thread: CTest runs two tests at once on two cores.
    try:
        import torch
        torch.set_num_threads(1)
    except ImportError:
        pass
    unittest.main(verbosity=2, argv=[sys.argv[0]] + sys.argv[1:])
