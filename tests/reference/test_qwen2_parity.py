#!/usr/bin/env python3
"""The project's Qwen2 against transformers' Qwen2ForCausalLM, the implementation real
checkpoints were trained with.

Models: two configurations shaped like real checkpoints, cut to 2 layers, each randomly
initialised by transformers (every parameter drawn afresh, biases and norm weights included,
so nothing sits at a trivial value) and saved with `save_pretrained`:

* Qwen2.5-0.5B: hidden 896, 14 query heads over 2 KV heads (head_dim 64), intermediate
  4864, rope theta 1e6, tied embeddings; saved in shards (model.safetensors.index.json).
* DeepSeek-R1-Distill-Qwen-1.5B: hidden 1536, 12 query heads over 2 KV heads (head_dim 128),
  intermediate 8960, rope theta 1e4, untied embeddings; one model.safetensors.

Both keep the real vocabulary (151,936 rows) and get the project's committed Qwen
tokenizer.json. Checked:

* float32 logits of a right-padded batch of prompts (Forward, and the KV-cached
  prefill + decode path), equal to transformers' within 1e-4 at every real position;
* greedy generation of 32 tokens through `deepsearch generate`, token for token;
* bfloat16: both implementations in bf16 against transformers' float32 logits; the
  project's relative error (‖ours − ref‖ / ‖ref‖ over real positions) must stay within 1.5×
  transformers' own bf16 error plus 1e-3, and under 2%. bf16 keeps 8 bits of mantissa (a
  relative rounding step of 2^-8 ≈ 0.4%) and the two differ in where they round (fused
  projections, the softmax's and RMSNorm's float32 islands, reduction order), so equality is
  not the test: being as accurate as the reference is;
* the other direction: `deepsearch export` of a checkpoint (the project's own `small` preset,
  and the 0.5B-shaped model) writes a directory that transformers loads, whose logits equal
  the project's; a bfloat16 export holds exactly the weights rounded to bf16.
"""

import copy
import json
import os
import shutil

import numpy as np
import torch
from safetensors.numpy import load_file
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM, Qwen2Config, Qwen2ForCausalLM

import reference_common as rc

CONFIGS = {
    "qwen2.5-0.5b": dict(hidden_size=896, intermediate_size=4864, num_attention_heads=14,
                         num_key_value_heads=2, rope_theta=1e6, tie_word_embeddings=True,
                         max_position_embeddings=32768, seed=5, shard="400MB"),
    "r1-distill-1.5b": dict(hidden_size=1536, intermediate_size=8960, num_attention_heads=12,
                            num_key_value_heads=2, rope_theta=1e4, tie_word_embeddings=False,
                            max_position_embeddings=131072, seed=6, shard=None),
}
PROMPTS = [
    "Let's compute 12345+678 step by step.",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "数学是科学的皇后。",
    "def f(x):\n    return x ** 2  # \\boxed{4}",
]
FP32_TOLERANCE = 1e-4


def make_model(name, out_dir):
    spec = dict(CONFIGS[name])
    seed, shard = spec.pop("seed"), spec.pop("shard")
    theta = spec.pop("rope_theta")
    config = Qwen2Config(vocab_size=151936, num_hidden_layers=2, rms_norm_eps=1e-6,
                         rope_parameters={"rope_type": "default", "rope_theta": theta},
                         bos_token_id=151643, eos_token_id=151643, use_sliding_window=False,
                         **spec)
    config._attn_implementation = "eager"
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config).eval()
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if "norm" in pname:
                p.normal_(1.0, 0.2)
            elif pname.endswith("bias"):
                p.normal_(0.0, 0.5)
            else:
                p.normal_(0.0, 0.02)
    # The config really is what it claims (theta, head_dim from hidden / heads).
    head_dim = spec["hidden_size"] // spec["num_attention_heads"]
    inv_freq = model.model.rotary_emb.inv_freq
    assert abs(float(inv_freq[1]) - theta ** (-2.0 / head_dim)) < 1e-6 * float(inv_freq[1])
    kwargs = {"max_shard_size": shard} if shard else {}
    model.save_pretrained(out_dir, **kwargs)
    shutil.copy(rc.QWEN_TOKENIZER, os.path.join(out_dir, "tokenizer.json"))
    return model


def real_positions(logits, lengths):
    """The logits at real (unpadded) positions, concatenated: [sum(lengths), V]."""
    return np.concatenate([logits[b, :n] for b, n in enumerate(lengths)])


def relative_error(x, ref):
    return float(np.linalg.norm(x - ref) / np.linalg.norm(ref))


class Qwen2ParityTest(rc.ScratchTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.cli = rc.binary("DEEPSEARCH_CLI")
        cls.probe = rc.binary("DEEPSEARCH_PROBE")
        tokenizer = Tokenizer.from_file(rc.QWEN_TOKENIZER)
        cls.rows = [tokenizer.encode(p, add_special_tokens=False).ids for p in PROMPTS]
        cls.lengths = [len(r) for r in cls.rows]
        assert len(set(cls.lengths)) > 1, "the batch must need padding"
        cls.batch = os.path.join(cls.scratch, "batch.json")
        rc.write_json(cls.batch, cls.rows)
        cls.models = {}

    def model(self, name):
        """(directory, transformers model in float32) of a configuration, made once."""
        if name not in self.models:
            directory = os.path.join(self.scratch, name)
            self.models[name] = (directory, make_model(name, directory))
        return self.models[name]

    def hf_logits(self, model, dtype=torch.float32):
        width = max(self.lengths)
        ids = torch.zeros(len(self.rows), width, dtype=torch.long)
        mask = torch.zeros(len(self.rows), width, dtype=torch.long)
        for b, row in enumerate(self.rows):
            ids[b, :len(row)] = torch.tensor(row)
            mask[b, :len(row)] = 1
        if dtype != model.dtype:
            model = copy.deepcopy(model).to(dtype)
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=mask).logits.float().numpy()
        return real_positions(logits, self.lengths)

    def run_probe(self, command, directory, dtype="float32"):
        out = os.path.join(self.scratch, f"{command}-{os.path.basename(directory)}-{dtype}.safetensors")
        rc.run([self.probe, command, "--model", directory, "--batch", self.batch, "--out", out,
                "--dtype", dtype])
        tensors = load_file(out)
        os.remove(out)
        return tensors

    def ours_logits(self, directory, dtype="float32"):
        tensors = self.run_probe("logits", directory, dtype)
        self.assertEqual(tensors["lengths"].tolist(), self.lengths)
        logits = tensors["logits"]
        # Padded positions are zero.
        for b, n in enumerate(self.lengths):
            self.assertFalse(np.any(logits[b, n:]), f"row {b}: padding not zero")
        return real_positions(logits, self.lengths)

    def check_fp32(self, name):
        directory, model = self.model(name)
        ref = self.hf_logits(model)
        ours = self.ours_logits(directory)
        self.assertEqual(ours.shape, ref.shape)
        worst = float(np.abs(ours - ref).max())
        print(f"{name}: float32 logits, max |ours - transformers| = {worst:.2e} over "
              f"{ref.shape[0]} positions x {ref.shape[1]} (max |logit| {np.abs(ref).max():.2f})")
        self.assertLess(worst, FP32_TOLERANCE)
        # The KV-cached path: logits after each row's last token.
        decoded = self.run_probe("decode", directory)["logits"]
        last = np.stack([ref[sum(self.lengths[:b]) + n - 1] for b, n in enumerate(self.lengths)])
        worst_decode = float(np.abs(decoded - last).max())
        print(f"{name}: float32 prefill + decode, max |ours - transformers| = {worst_decode:.2e}")
        self.assertLess(worst_decode, FP32_TOLERANCE)

    def check_bf16(self, name):
        directory, model = self.model(name)
        ref = self.hf_logits(model)
        theirs = self.hf_logits(model, torch.bfloat16)
        ours = self.ours_logits(directory, "bfloat16")
        theirs_error, ours_error = relative_error(theirs, ref), relative_error(ours, ref)
        print(f"{name}: bfloat16 relative error against float32 transformers: ours "
              f"{ours_error:.2e}, transformers' own {theirs_error:.2e}")
        self.assertLess(ours_error, 1.5 * theirs_error + 1e-3)
        self.assertLess(ours_error, 0.02)

    def check_greedy(self, name):
        directory, model = self.model(name)
        tokenizer = Tokenizer.from_file(rc.QWEN_TOKENIZER)
        for prompt in PROMPTS[:2]:
            ids = tokenizer.encode(prompt, add_special_tokens=False).ids
            with torch.no_grad():
                out = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                     max_new_tokens=32, do_sample=False)
                theirs = out[0, len(ids):].tolist()
                scores = model(out[:, :-1]).logits[0, len(ids) - 1:]
            done = rc.run([self.cli, "generate", "--model", directory, "--prompt", prompt,
                           "--top-k", "1", "--max-tokens", "32", "--json"])
            ours = json.loads(done.stdout.splitlines()[0])["tokens"]
            if ours != theirs:
                step = next(i for i, (a, b) in enumerate(zip(ours + [-1], theirs + [-1])) if a != b)
                top2 = torch.topk(scores[min(step, len(scores) - 1)], 2).values
                self.fail(f"{name}: greedy generation differs at token {step} of {prompt!r}: "
                          f"ours {ours}, transformers {theirs} (transformers' top-2 gap there "
                          f"{float(top2[0] - top2[1]):.2e})")
            print(f"{name}: greedy generation of {len(ours)} tokens equal for {prompt!r}")
        self.assertEqual(len(ours), 32)

    def test_qwen25_05b_fp32(self):
        self.check_fp32("qwen2.5-0.5b")

    def test_qwen25_05b_bf16(self):
        self.check_bf16("qwen2.5-0.5b")

    def test_qwen25_05b_greedy(self):
        self.check_greedy("qwen2.5-0.5b")

    def test_r1_distill_fp32(self):
        self.check_fp32("r1-distill-1.5b")

    def test_r1_distill_bf16(self):
        self.check_bf16("r1-distill-1.5b")

    def test_r1_distill_greedy(self):
        self.check_greedy("r1-distill-1.5b")

    def export(self, model_dir, dtype):
        """`deepsearch export` of a checkpoint whose model is model_dir; the output folder."""
        checkpoint = os.path.join(self.scratch, f"checkpoint-{os.path.basename(model_dir)}")
        os.makedirs(checkpoint, exist_ok=True)
        link = os.path.join(checkpoint, "model")
        if not os.path.exists(link):
            os.symlink(model_dir, link)
        out = os.path.join(self.scratch, f"export-{os.path.basename(model_dir)}-{dtype}")
        rc.run([self.cli, "export", "--checkpoint", checkpoint, "--out", out, "--dtype", dtype])
        return out

    def test_export_small_preset(self):
        model_dir = os.path.join(self.scratch, "small")
        rc.run([self.cli, "model", "init", "--preset", "small", "--out", model_dir, "--seed", "11"])
        exported = self.export(model_dir, "float32")
        theirs = AutoModelForCausalLM.from_pretrained(exported).eval()
        self.assertEqual(type(theirs).__name__, "Qwen2ForCausalLM")
        vocab = theirs.config.vocab_size
        rows = [[(7 * i + 3 * b) % vocab for i in range(5 + 3 * b)] for b in range(3)]
        batch = os.path.join(self.scratch, "small-batch.json")
        rc.write_json(batch, rows)
        out = os.path.join(self.scratch, "small-logits.safetensors")
        rc.run([self.probe, "logits", "--model", model_dir, "--batch", batch, "--out", out])
        ours = load_file(out)["logits"]
        worst = 0.0
        with torch.no_grad():
            for b, row in enumerate(rows):
                ref = theirs(torch.tensor([row])).logits[0].numpy()
                worst = max(worst, float(np.abs(ours[b, :len(row)] - ref).max()))
        print(f"small preset exported: max |ours - transformers| = {worst:.2e}")
        self.assertLess(worst, FP32_TOLERANCE)

    def test_export_qwen25_05b(self):
        directory, model = self.model("qwen2.5-0.5b")
        ref = self.hf_logits(model)
        exported = self.export(directory, "float32")
        theirs = AutoModelForCausalLM.from_pretrained(exported).eval()
        self.assertTrue(theirs.config.tie_word_embeddings)
        reloaded = self.hf_logits(theirs)
        self.assertLess(float(np.abs(reloaded - ref).max()), FP32_TOLERANCE)
        self.assertLess(float(np.abs(self.ours_logits(exported) - reloaded).max()), FP32_TOLERANCE)
        # bfloat16: exactly the weights rounded to bf16, and logits as close as the reference's.
        exported16 = self.export(directory, "bfloat16")
        theirs16 = AutoModelForCausalLM.from_pretrained(exported16).eval()
        self.assertEqual(theirs16.dtype, torch.bfloat16)
        source = dict(model.named_parameters())
        for pname, p in theirs16.named_parameters():
            self.assertTrue(torch.equal(p, source[pname].detach().to(torch.bfloat16)), pname)
        error = relative_error(self.ours_logits(exported16, "bfloat16"), self.hf_logits(theirs16, torch.bfloat16))
        print(f"qwen2.5-0.5b exported in bfloat16: ours vs transformers on it, relative {error:.2e}")
        self.assertLess(error, 0.02)


if __name__ == "__main__":
    rc.main()
