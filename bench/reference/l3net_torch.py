#!/usr/bin/env python3
"""PyTorch twin of l3kit's L3-Net, timed the way `npm run bench` times l3kit.

The network is built from the same JSON config l3kit uses (`L3NetConfig`), so shapes and parameter
counts match exactly: two VGG towers of [conv k x k (same padding, no bias) -> batch norm -> ReLU] x
convsPerBlock per block, 2x2 max-pool after every block but the last, global max-pool; the fusion
head of the config (concat / euclidean / cosine / avol). The training step is the same as l3kit's
`trainStep`: forward in training mode, softmax cross-entropy, backward, Adam (lr 1e-4, eps 1e-7,
L2 term 2*1e-5*w on conv and dense kernels only), and the loss read back to the host. Inputs arrive
NHWC (as l3kit's) and are viewed as NCHW tensors in channels_last memory format (no copy).

Usage:
  l3net_torch.py --config cfg.json [--batch 8] [--reps 5] [--warmup 2] [--threads N]
                 [--what train,forward] [--min-rep-ms 300]
Prints one JSON object on stdout.
"""

import argparse
import json
import math
import os
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def audio_input_shape(fe):
    """[bins, frames] of the audio front-end (same formula as l3kit's audioInputShape)."""
    n = round(fe["sampleRate"] * fe["durationSec"])
    win = fe["winLength"] if fe["kind"] == "linear" else fe["nFft"]
    hop = fe["hopLength"]
    if fe["padding"] == "same":
        frames = math.ceil(n / hop)
    elif fe["padding"] == "center":
        frames = 1 + (n + 2 * (win // 2) - win) // hop
    else:
        frames = 1 + (n - win) // hop
    bins = fe["nFft"] // 2 + 1 if fe["kind"] == "linear" else fe["nMels"]
    return bins, frames


class Tower(nn.Module):
    def __init__(self, cfg, cin, bn, input_bn=False):
        super().__init__()
        # mel front-ends: a batch norm right after the spectrogram (l3embedding / OpenL3; l3kit's audio/input_bn)
        layers = [nn.BatchNorm2d(cin, eps=bn["epsilon"], momentum=1 - bn["momentum"])] if input_bn else []
        k = cfg["kernelSize"]
        blocks = len(cfg["widths"])
        for b, width in enumerate(cfg["widths"]):
            for _ in range(cfg["convsPerBlock"]):
                layers += [
                    nn.Conv2d(cin, width, k, padding=k // 2, bias=False),
                    # Keras momentum m (moving = m*moving + (1-m)*batch) is PyTorch momentum 1-m
                    nn.BatchNorm2d(width, eps=bn["epsilon"], momentum=1 - bn["momentum"]),
                    nn.ReLU(inplace=True),
                ]
                cin = width
            if b < blocks - 1:
                layers.append(nn.MaxPool2d(2, 2))
        self.body = nn.Sequential(*layers)
        self.channels = cin

    def forward(self, x):
        m = self.body(x)
        return m, torch.amax(m, dim=(2, 3))


def l2n(x, dim):
    return x / torch.sqrt(torch.clamp(torch.sum(x * x, dim=dim, keepdim=True), min=1e-12))


class L3Net(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.symmetric = cfg["vision"]["frontEnd"]["normalize"] == "symmetric"
        self.vision = Tower(cfg["vision"], 3, cfg["batchNorm"])
        self.audio = Tower(cfg["audio"], 1, cfg["batchNorm"], input_bn=cfg["audio"]["frontEnd"]["kind"] == "mel")
        cv, ca = self.vision.channels, self.audio.channels
        hidden, emb = cfg["head"]["hidden"], cfg["head"]["embedDim"]
        self.fusion = cfg["fusion"]
        if self.fusion == "concat":
            self.fc1 = nn.Linear(cv + ca, hidden)
            self.logits = nn.Linear(hidden, 2)
        else:
            if self.fusion == "avol":
                self.v1 = nn.Conv2d(cv, hidden, 1)
                self.v2 = nn.Conv2d(hidden, emb, 1)
            else:
                self.v1 = nn.Linear(cv, hidden)
                self.v2 = nn.Linear(hidden, emb)
            self.a1 = nn.Linear(ca, hidden)
            self.a2 = nn.Linear(hidden, emb)
            self.logits = nn.Linear(1, 2)

    def forward(self, frames, audio):
        x = frames * 2 - 1 if self.symmetric else frames
        vmap, vemb = self.vision(x)
        _, aemb = self.audio(audio)
        if self.fusion == "concat":
            return self.logits(F.relu(self.fc1(torch.cat([vemb, aemb], 1))))
        ae = l2n(self.a2(F.relu(self.a1(aemb))), 1)
        if self.fusion == "avol":
            ve = l2n(self.v2(F.relu(self.v1(vmap))), 1)  # B x E x h x w
            sim = torch.einsum("behw,be->bhw", ve, ae)
            score = torch.amax(sim.flatten(1), dim=1, keepdim=True)
        else:
            ve = l2n(self.v2(F.relu(self.v1(vemb))), 1)
            if self.fusion == "euclidean":
                score = torch.sqrt(torch.sum((ve - ae) ** 2, 1, keepdim=True) + 1e-12)
            else:
                score = torch.sum(ve * ae, 1, keepdim=True)
        return self.logits(score)


def time_reps(fn, warmup, reps, min_rep_ms):
    """Median ms per call over `reps` repetitions, each long enough (>= min_rep_ms), after warm-up."""
    t = 0.0
    for _ in range(max(1, warmup)):
        t0 = time.perf_counter()
        fn()
        t = (time.perf_counter() - t0) * 1000
    per_rep = max(1, math.ceil(min_rep_ms / max(t, 1e-3)))
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(per_rep):
            fn()
        times.append((time.perf_counter() - t0) * 1000 / per_rep)
    return {"msPerCall": statistics.median(times), "minMs": min(times), "reps": reps, "callsPerRep": per_rep, "allMs": times}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--config", required=True)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--what", default="train,forward")
    p.add_argument("--min-rep-ms", type=float, default=300)
    args = p.parse_args()
    with open(args.config) as f:
        cfg = json.load(f)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    B = args.batch
    s = cfg["vision"]["frontEnd"]["size"]
    bins, nframes = audio_input_shape(cfg["audio"]["frontEnd"])
    rng = np.random.default_rng(0)
    frames_nhwc = rng.random((B, s, s, 3), dtype=np.float32)
    audio_nhwc = rng.uniform(-2, 2, (B, bins, nframes, 1)).astype(np.float32)
    labels = torch.tensor([i % 2 for i in range(B)], dtype=torch.long)

    model = L3Net(cfg).to(memory_format=torch.channels_last)
    decay = [p for n, p in model.named_parameters() if p.dim() > 1]
    other = [p for n, p in model.named_parameters() if p.dim() <= 1]
    opt = torch.optim.Adam(
        [{"params": decay, "weight_decay": 2e-5}, {"params": other, "weight_decay": 0.0}], lr=1e-4, betas=(0.9, 0.999), eps=1e-7
    )
    n_params = sum(p.numel() for p in model.parameters())

    def inputs():
        # NHWC arrays viewed as NCHW: exactly the channels_last layout, no copy
        f = torch.from_numpy(frames_nhwc).permute(0, 3, 1, 2)
        a = torch.from_numpy(audio_nhwc).permute(0, 3, 1, 2)
        return f, a

    def train_step():
        model.train()
        f, a = inputs()
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(f, a), labels)
        loss.backward()
        opt.step()
        return loss.item()

    def forward():
        model.eval()
        f, a = inputs()
        with torch.inference_mode():
            probs = torch.softmax(model(f, a), dim=1)
        return probs.numpy().copy()

    out = {
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": sys.version.split()[0],
        "threads": torch.get_num_threads(),
        "mkldnn": bool(torch.backends.mkldnn.is_available()),
        "batch": B,
        "params": n_params,
        "inputShapes": {"frames": [B, s, s, 3], "audio": [B, bins, nframes, 1]},
    }
    what = set(args.what.split(","))
    if "train" in what:
        r = time_reps(train_step, args.warmup, args.reps, args.min_rep_ms)
        r["samplesPerSec"] = B * 1000 / r["msPerCall"]
        r["loss"] = train_step()
        out["train"] = r
    if "forward" in what:
        if "train" not in what:
            # Measured on an AMD EPYC (family 26) with Debian's torch 1.13: inference in a process that
            # has not trained yet runs about 3x slower (lite: 190 vs 510 samples/s). Two training steps
            # first, as when "train" is timed, so PyTorch is timed at its best either way.
            train_step()
            train_step()
        r = time_reps(forward, args.warmup, args.reps, args.min_rep_ms)
        r["samplesPerSec"] = B * 1000 / r["msPerCall"]
        out["forward"] = r
    print(json.dumps(out))


if __name__ == "__main__":
    main()
