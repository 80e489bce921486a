"""Does the shipped model's gate favour the right class? Prints, over the anomalous clips of the
built-in test split, how often the class with the largest gate-weighted expert evidence
(``sum_t g_te s^e_t`` over the true anomalous snippets) or the largest mean expert score is the
injected class, and the mean gate weight per expert.

``uv run --locked --no-sync python packages/vad/benchmarks/gate_classes.py``
"""

import torch

from moe_zoo.vad.builtin import load_builtin
from moe_zoo.vad.predict import load


def main() -> None:
    torch.set_num_threads(1)
    model = load(device="cpu")
    names = model.class_names
    test = load_builtin("test", progress=False)
    hits_gate = hits_expert = n = 0
    gates = []
    for video in test.videos:
        with torch.inference_mode():
            out = model(torch.from_numpy(video.load())[None])
        gates.append(out.gate_weights[0].mean(0))
        if not video.label:
            continue
        inside = torch.from_numpy(video.frame_labels.reshape(-1, test.snippet_len).max(1) > 0)
        evidence = (out.gate_weights[0] * out.expert_scores[0].T)[inside].sum(0)
        mean_score = out.expert_scores[0][:, inside].mean(1)
        n += 1
        hits_gate += names[int(evidence.argmax())] == video.classes[0]
        hits_expert += names[int(mean_score.argmax())] == video.classes[0]
    mean_gate = torch.stack(gates).mean(0)
    print(f"{n} anomalous test clips, {len(names)} classes (chance {1 / len(names):.2f})")
    print(f"gate-weighted evidence picks the injected class: {hits_gate / n:.2f}")
    print(f"largest mean expert score picks the injected class: {hits_expert / n:.2f}")
    print("mean gate weight per expert: " + ", ".join(f"{c} {w:.2f}" for c, w in zip(names, mean_gate.tolist())))


if __name__ == "__main__":
    main()
