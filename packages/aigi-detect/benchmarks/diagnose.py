"""Why does the single adapter beat OmniAID here? One OmniAID run with the benchmark's settings
(seed 0, trained on real vs GAN fakes + reconstructions), scored on the test split with the router's
choice and with fixed expert choices; trainable/active parameter counts; how far the combined
experts move the backbone's features at initialisation. Writes benchmarks/diagnostics/<variant>-seed<seed>.json.

    uv run --locked --no-sync python packages/aigi-detect/benchmarks/diagnose.py [--official-sum] [--seed 0]
"""

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from moe_zoo.aigi.benchmark import _train_config
from moe_zoo.aigi.builtin import load_builtin
from moe_zoo.aigi.images import to_tensor
from moe_zoo.aigi.metrics import detection_metrics, per_generator
from moe_zoo.aigi.model import OmniAID, OmniAIDConfig
from moe_zoo.aigi.train import train, training_subset


@torch.inference_mode()
def _probs_with_gates(model: OmniAID, images: np.ndarray, gate_fn, batch: int = 128) -> np.ndarray:
    """P(fake) with the gates ``gate_fn(router_gates, rows)`` instead of the router's."""
    out = []
    for start in range(0, len(images), batch):
        x = model.normalise(to_tensor(images[start:start + batch], model.config.image_size))
        gates = gate_fn(model.route(x)[0], np.arange(start, min(start + batch, len(images))))
        out.append(model.head(model.adapted_features(x, gates)).softmax(-1)[:, 1])
    return torch.cat(out).numpy()


def _trainable(model: OmniAID, expert: int) -> int:
    return sum(p.numel() for p in model.expert_parameters(expert))


@torch.inference_mode()
def _feature_shift(config: OmniAIDConfig, gates: list[float], images: np.ndarray) -> float:
    """``||f_adapted - f_pretrained|| / ||f_pretrained||`` of the pooled feature, untrained experts."""
    model = OmniAID(config).eval()
    x = model.normalise(to_tensor(images, config.image_size))
    pretrained = model._pool(model.frozen, x)
    adapted = model.adapted_features(x, torch.tensor([gates]))
    return float(((adapted - pretrained).norm(dim=1) / pretrained.norm(dim=1)).mean())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--official-sum", action="store_true", help="chunk_once=False: the official formula")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    variant = "official-sum" if args.official_sum else "chunk-once"
    out = Path(args.out or Path(__file__).parent / "diagnostics" / f"{variant}-seed{args.seed}.json")
    torch.set_num_threads(1)
    train_set = training_subset(load_builtin("train"), ["gan"])
    test = load_builtin("test")
    test = test.subset(test.generators != "ae_recon")
    config = OmniAIDConfig(image_size=args.image_size, chunk_once=not args.official_sum)
    torch.manual_seed(args.seed)
    model = OmniAID(config)
    history = train(model, train_set, config=_train_config(False), seed=args.seed, device="cpu").history
    n_sem, domains = config.n_semantic, torch.from_numpy(test.domains)

    def fixed(experts):
        def gate_fn(router, rows):
            gates = torch.zeros_like(router)
            for e in experts(rows):
                gates[torch.arange(len(rows)), e] = 1.0
            return gates
        return gate_fn

    variants = {"router (OmniAID as trained)": lambda router, rows: router,
                "oracle routing (own domain's expert) + artifact": fixed(lambda r: [domains[r], n_sem]),
                **{f"every image -> {name} + artifact": fixed(lambda r, e=e: [e, n_sem])
                   for e, name in enumerate(config.domains)},
                "artifact expert alone": fixed(lambda r: [n_sem])}
    results = {}
    for name, gate_fn in variants.items():
        probs = _probs_with_gates(model, test.images, gate_fn)
        gens = per_generator(test.labels, probs, test.generators)
        results[name] = {"unseen_acc": float(np.mean([gens[g]["acc"] for g in ("vae", "ddpm")])),
                         "unseen_ap": float(np.mean([gens[g]["ap"] for g in ("vae", "ddpm")])),
                         "real_acc": detection_metrics(test.labels, probs)["real_acc"],
                         **{f"acc_{g}": gens[g]["acc"] for g in gens}}
    with torch.inference_mode():
        routed = np.concatenate([model.route(model.normalise(to_tensor(test.images[i:i + 256], config.image_size)))[0]
                                 [:, :n_sem].argmax(1).numpy() for i in range(0, len(test), 256)])
    single = OmniAID(config.replace(domains=(), rank=8))
    sample = test.images[:64]
    record = {"variant": variant, "seed": args.seed, "image_size": args.image_size, "history": history, "variants": results,
              "routing_accuracy": float((routed == test.domains).mean()),
              "parameters": {"omniaid_per_semantic_expert": _trainable(model, 0),
                             "omniaid_artifact_expert": _trainable(model, n_sem),
                             "omniaid_all_experts": sum(_trainable(model, e) for e in range(config.n_experts)),
                             "omniaid_active_per_image": _trainable(model, 0) + _trainable(model, n_sem),
                             "single_adapter": _trainable(single, 0)},
              "feature_shift_at_init": {"one expert, gate 1 (stage 1)": _feature_shift(config, [1, 0, 0, 0], sample),
                                        "semantic + artifact, gates 1 + 1 (stage 2, inference)":
                                            _feature_shift(config, [1, 0, 0, 1], sample)}}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1))
    print(json.dumps({k: v for k, v in record.items() if k != "history"}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
