#!/usr/bin/python3
"""A second, independent Phi3ForCausalLM forward pass in numpy (float64), written from the Hugging Face
definition without looking at the C++ reference's loops. reference_numpy_test runs it on the tiny checkpoint and
compares its logits and per-layer residual RMS with tests/reference/reference_model.cc.

usage: numpy_phi3.py --model DIR --tokens 1,2,3 --logits-out FILE --norms-out FILE
Writes the logits [tokens, vocab] and the per-layer RMS of the residual stream at the last position as raw
little-endian float64.
"""
import argparse
import json
import os
import struct

import numpy as np


def read_safetensors(path):
    """Returns {name: float64 array} for one shard (BF16 or F32)."""
    with open(path, "rb") as f:
        raw = f.read()
    (header_len,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + header_len])
    data = raw[8 + header_len :]
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        chunk = data[begin:end]
        if entry["dtype"] == "BF16":
            bits = np.frombuffer(chunk, dtype="<u2").astype(np.uint32) << 16
            values = bits.view(np.float32)
        elif entry["dtype"] == "F32":
            values = np.frombuffer(chunk, dtype="<f4")
        else:
            raise ValueError(f"{path}: {name}: unsupported dtype {entry['dtype']}")
        tensors[name] = values.astype(np.float64).reshape(entry["shape"])
    return tensors


def load_weights(model_dir):
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            shards = sorted(set(json.load(f)["weight_map"].values()))
    else:
        shards = ["model.safetensors"]
    weights = {}
    for shard in shards:
        weights.update(read_safetensors(os.path.join(model_dir, shard)))
    return weights


def rms_norm(x, weight, eps):
    variance = np.mean(x * x, axis=-1, keepdims=True)
    return x / np.sqrt(variance + eps) * weight


def rope_cos_sin(positions, head_dim, theta):
    inv_freq = 1.0 / (theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim))
    freqs = np.outer(positions, inv_freq)          # [T, d/2]
    emb = np.concatenate([freqs, freqs], axis=-1)  # [T, d], as HF's cat((freqs, freqs))
    return np.cos(emb), np.sin(emb)


def rotate_half(x):
    half = x.shape[-1] // 2
    return np.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def attention(q, k, v, num_kv_groups):
    """q: [H, T, d]; k, v: [KV, T, d] -> [T, H*d]"""
    k = np.repeat(k, num_kv_groups, axis=0)  # HF's repeat_kv: KV head j serves query heads j*g .. j*g+g-1
    v = np.repeat(v, num_kv_groups, axis=0)
    heads, tokens, head_dim = q.shape
    scores = q @ k.transpose(0, 2, 1) / np.sqrt(head_dim)
    mask = np.triu(np.ones((tokens, tokens), dtype=bool), k=1)
    scores = np.where(mask, -np.inf, scores)
    scores = scores - scores.max(axis=-1, keepdims=True)
    probs = np.exp(scores)
    probs /= probs.sum(axis=-1, keepdims=True)
    out = probs @ v  # [H, T, d]
    return out.transpose(1, 0, 2).reshape(tokens, heads * head_dim)


def forward(config, w, tokens):
    hidden = config["hidden_size"]
    heads = config["num_attention_heads"]
    kv_heads = config.get("num_key_value_heads") or heads
    head_dim = hidden // heads
    inter = config["intermediate_size"]
    eps = config["rms_norm_eps"]
    cos, sin = rope_cos_sin(np.arange(len(tokens), dtype=np.float64), head_dim, config.get("rope_theta", 10000.0))
    x = w["model.embed_tokens.weight"][tokens]
    norms = []
    for layer in range(config["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        h = rms_norm(x, w[p + "input_layernorm.weight"], eps)
        qkv = h @ w[p + "self_attn.qkv_proj.weight"].T
        q = qkv[:, : heads * head_dim]
        k = qkv[:, heads * head_dim : (heads + kv_heads) * head_dim]
        v = qkv[:, (heads + kv_heads) * head_dim :]
        q = q.reshape(len(tokens), heads, head_dim).transpose(1, 0, 2)
        k = k.reshape(len(tokens), kv_heads, head_dim).transpose(1, 0, 2)
        v = v.reshape(len(tokens), kv_heads, head_dim).transpose(1, 0, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        x = x + attention(q, k, v, heads // kv_heads) @ w[p + "self_attn.o_proj.weight"].T
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        gate_up = h @ w[p + "mlp.gate_up_proj.weight"].T
        gate, up = gate_up[:, :inter], gate_up[:, inter:]
        x = x + (up * (gate / (1.0 + np.exp(-gate)))) @ w[p + "mlp.down_proj.weight"].T
        norms.append(np.sqrt(np.mean(x[-1] ** 2)))
    logits = rms_norm(x, w["model.norm.weight"], eps) @ w["lm_head.weight"].T
    return logits, np.array(norms)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True)
    parser.add_argument("--tokens", required=True)
    parser.add_argument("--logits-out", required=True)
    parser.add_argument("--norms-out", required=True)
    args = parser.parse_args()
    with open(os.path.join(args.model, "config.json")) as f:
        config = json.load(f)
    tokens = np.array([int(t) for t in args.tokens.split(",")], dtype=np.int64)
    logits, norms = forward(config, load_weights(args.model), tokens)
    logits.astype("<f8").tofile(args.logits_out)
    norms.astype("<f8").tofile(args.norms_out)


if __name__ == "__main__":
    main()
