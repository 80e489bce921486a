"""``moe-zoo aigi demo``: the shipped detector on held-out real photographs and on fakes that the
package's own generators made (shipped as a small PNG grid next to the weights)."""

from __future__ import annotations

import time
from importlib.resources import files

import numpy as np
from PIL import Image

from moe_zoo.aigi.builtin import DEFAULT_DOMAINS, SIZE, finish, real_crops
from moe_zoo.aigi.metrics import detection_metrics
from moe_zoo.aigi.predict import DEFAULT_MODEL, _expert_names, load, score
from moe_zoo.core import read_checkpoint_metadata
from moe_zoo.core.registry import get_model_spec

SAMPLES = "weights/demo-fakes.png"      # rows: vae, gan, ddpm; columns: 4 images per domain


def shipped_fakes() -> tuple[np.ndarray, list[str], list[str]]:
    """The shipped grid of fakes: ``uint8 [N, 32, 32, 3]``, their families and domains."""
    grid = np.asarray(Image.open(files("moe_zoo.aigi").joinpath(SAMPLES)).convert("RGB"))
    rows, cols = grid.shape[0] // SIZE, grid.shape[1] // SIZE
    tiles = grid.reshape(rows, SIZE, cols, SIZE, 3).transpose(0, 2, 1, 3, 4).reshape(-1, SIZE, SIZE, 3)
    per = cols // len(DEFAULT_DOMAINS)
    families = [f for f in ("vae", "gan", "ddpm")[:rows] for _ in range(cols)]
    domains = [DEFAULT_DOMAINS[c // per] for _ in range(rows) for c in range(cols)]
    return tiles, families, domains


def run_demo(n_real: int = 8) -> str:
    began = time.perf_counter()
    model = load(DEFAULT_MODEL, device="cpu")
    meta = read_checkpoint_metadata(get_model_spec(DEFAULT_MODEL).weights_path()).get("metadata", {})
    real = np.stack([finish(img) for d in DEFAULT_DOMAINS for img in real_crops(d, "test", n_real, seed=123, clips=False)])
    real_domains = [d for d in DEFAULT_DOMAINS for _ in range(n_real)]
    fakes, families, fake_domains = shipped_fakes()
    probs, gates = score(model, np.concatenate([real, fakes]))
    labels = np.r_[np.zeros(len(real)), np.ones(len(fakes))].astype(int)
    m = detection_metrics(labels, probs)
    names = _expert_names(model)
    lines = [
        "OmniAID (MobileNetV2 ImageNet backbone; 3 semantic SVD experts, top-1 router, + artifact expert)",
        f"weights: {meta.get('data', '?')}, seed {meta.get('seed')}, {meta.get('seconds', 0):.0f} s of training",
        f"{len(real)} real 32x32 crops of photographs never used in training, {len(fakes)} images from the "
        "package's own VAE / GAN / DDPM (test seeds); all JPEG q90 round-tripped",
        f"accuracy {m['acc']:.2f} (real {m['real_acc']:.2f}, fake {m['fake_acc']:.2f}), AP {m['ap']:.2f}",
        "",
        f"{'image':<28}{'P(AI)':>7}  router's semantic expert",
    ]
    sources = [f"real {d}" for d in real_domains] + [f"{f} fake {d}" for f, d in zip(families, fake_domains,
                                                                                       strict=True)]
    for i in list(range(0, len(real), n_real // 2)) + list(range(len(real), len(labels), 3)):
        chosen = [f"{names[e]} {gates[i, e]:.2f}" for e in np.flatnonzero(gates[i] > 0) if names[e] != "artifact"]
        lines.append(f"{sources[i]:<28}{probs[i]:>7.3f}  {', '.join(chosen)}")
    routed = {d: names[int(np.bincount(gates[[j for j, s in enumerate(real_domains) if s == d],
                                             :len(DEFAULT_DOMAINS)].argmax(1)).argmax())] for d in DEFAULT_DOMAINS}
    lines += ["", "most frequent expert for the real crops of each domain: "
              + ", ".join(f"{d} -> {e}" for d, e in routed.items()),
              f"({time.perf_counter() - began:.1f} s on CPU)"]
    return "\n".join(lines)
