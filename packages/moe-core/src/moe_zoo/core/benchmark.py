"""MoE layer speed against a dense FFN of equal active FLOPs and against peer implementations.

Every implementation gets the same weights, the same input and therefore the same routing;
times are medians of interleaved repeats, pooled over a few fresh processes whose glibc malloc
keeps freed memory mapped (forward under ``no_grad``, and forward+backward with the input
requiring grad). Speed is reported as a percentage of the dense SwiGLU FFN whose hidden size is
``(k + shared) * f`` on the same tokens: 100% means the MoE costs no more than the dense FFN with
the same active FLOPs.

Peers: Hugging Face transformers' ``MixtralSparseMoeBlock`` (``Qwen2MoeSparseMoeBlock`` for the
shared-expert shape) with its ``eager``, ``grouped_mm`` and ``batched_mm`` experts
implementations, and DeepSpeed's ``MoE`` layer (top-1/top-2 gating only).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import multiprocessing
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from moe_zoo.core.dispatch import BACKENDS as DISPATCH_BACKENDS
from moe_zoo.core.experts import FeedForward
from moe_zoo.core.layer import MoEConfig, MoELayer
from moe_zoo.core.reporting import markdown_table, save_figure, write_benchmarks_md
from moe_zoo.core.runtime import get_logger

_log = get_logger(__name__)
BACKENDS = tuple(b for b in DISPATCH_BACKENDS if b != "triton")  # every CPU backend (Triton needs a GPU)
PHASES = ("fwd", "fwd+bwd")
# glibc malloc for the benchmark processes: allocations up to 256 MiB come from the heap instead of
# fresh mmaps, and freed memory stays mapped up to 1 GiB, so no timed call (MoE, dense or peer)
# pays the kernel for mapping and zeroing new pages; the glibc counterpart of the caching
# allocators (jemalloc, tcmalloc) PyTorch's CPU tuning guide recommends.
MALLOC_TUNABLES = "glibc.malloc.mmap_threshold=268435456:glibc.malloc.trim_threshold=1073741824"


@dataclass(frozen=True)
class Shape:
    tokens: int
    d_model: int
    d_hidden: int
    n_experts: int
    top_k: int
    shared: int = 0

    @property
    def label(self) -> str:
        extra = f" +{self.shared} shared" if self.shared else ""
        return f"T={self.tokens}, d={self.d_model}, f={self.d_hidden}, E={self.n_experts}, k={self.top_k}{extra}"


SHAPES = (Shape(4096, 512, 1024, 8, 2), Shape(4096, 512, 256, 64, 8), Shape(64, 512, 1024, 8, 2),
          Shape(4096, 512, 256, 64, 8, shared=1))
QUICK_SHAPES = (Shape(512, 128, 256, 8, 2), Shape(64, 128, 256, 8, 2))


@dataclass
class Implementation:
    name: str
    module: nn.Module
    run: Callable[[Tensor], Tensor]


def _ours(shape: Shape, backend: str, seed: int) -> MoELayer:
    torch.manual_seed(seed)
    config = MoEConfig(d_model=shape.d_model, d_hidden=shape.d_hidden, n_experts=shape.n_experts,
                       top_k=shape.top_k, n_shared_experts=shape.shared, shared_gate=bool(shape.shared),
                       backend=backend)
    return MoELayer(config)


def _hf_block(shape: Shape, reference: MoELayer, implementation: str) -> nn.Module:
    if shape.shared:
        from transformers import Qwen2MoeConfig
        from transformers.models.qwen2_moe.modeling_qwen2_moe import Qwen2MoeSparseMoeBlock

        config = Qwen2MoeConfig(hidden_size=shape.d_model, moe_intermediate_size=shape.d_hidden,
                                shared_expert_intermediate_size=shape.d_hidden * shape.shared,
                                num_experts=shape.n_experts, num_experts_per_tok=shape.top_k, norm_topk_prob=True)
        config._experts_implementation = implementation
        block = Qwen2MoeSparseMoeBlock(config)
        with torch.no_grad():
            ffn = reference.shared.ffn
            gate_w, up_w = ffn.proj_in.weight.chunk(2)
            block.shared_expert.gate_proj.weight.copy_(gate_w)
            block.shared_expert.up_proj.weight.copy_(up_w)
            block.shared_expert.down_proj.weight.copy_(ffn.proj_out.weight)
            block.shared_expert_gate.weight.copy_(reference.shared.gate.weight)
    else:
        from transformers import MixtralConfig
        from transformers.models.mixtral.modeling_mixtral import MixtralSparseMoeBlock

        config = MixtralConfig(hidden_size=shape.d_model, intermediate_size=shape.d_hidden,
                               num_local_experts=shape.n_experts, num_experts_per_tok=shape.top_k)
        config._experts_implementation = implementation
        block = MixtralSparseMoeBlock(config)
    with torch.no_grad():
        block.gate.weight.copy_(reference.router.weight)
        block.experts.gate_up_proj.copy_(reference.experts.w_in.transpose(1, 2))
        block.experts.down_proj.copy_(reference.experts.w_out.transpose(1, 2))
    return block


def _deepspeed_moe(shape: Shape, reference: MoELayer) -> nn.Module | None:
    """DeepSpeed's MoE (single process, ep_size=1, no token dropping), or None where unsupported."""
    if shape.top_k > 2 or shape.shared:
        return None
    import torch.distributed as dist

    if not dist.is_initialized():
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", "29617")
        dist.init_process_group("gloo", rank=0, world_size=1)
    with contextlib.redirect_stdout(io.StringIO()):
        from deepspeed.moe.layer import MoE
    expert = FeedForward(shape.d_model, shape.d_hidden)
    layer = MoE(hidden_size=shape.d_model, expert=expert, num_experts=shape.n_experts, ep_size=1, k=shape.top_k,
                capacity_factor=1.0, eval_capacity_factor=1.0, min_capacity=0, drop_tokens=False, use_rts=False,
                top2_2nd_expert_sampling=False)
    with torch.no_grad():
        layer.deepspeed_moe.gate.wg.weight.copy_(reference.router.weight)
        for e, ffn in enumerate(layer.deepspeed_moe.experts.deepspeed_experts):
            ffn.proj_in.weight.copy_(reference.experts.w_in[e].t())
            ffn.proj_out.weight.copy_(reference.experts.w_out[e].t())
    return layer


def _batched_mm_bytes(shape: Shape) -> int:
    """HF's batched_mm gathers every (token, slot)'s expert weights: 3 d f floats each."""
    return shape.tokens * shape.top_k * 3 * shape.d_model * shape.d_hidden * 4


def build_implementations(shape: Shape, seed: int = 0, peers: bool = True,
                          deepspeed: bool = True) -> list[Implementation]:
    """The dense FFN (first), moe-core's CPU backends and, with ``peers``, HF's blocks and (with
    ``deepspeed``) DeepSpeed's MoE, all with the eager layer's weights."""
    reference = _ours(shape, "eager", seed)
    torch.manual_seed(seed + 1)
    dense = FeedForward(shape.d_model, shape.d_hidden * (shape.top_k + shape.shared))
    impls = [Implementation("dense SwiGLU (same active FLOPs)", dense, dense)]
    for backend in BACKENDS:
        layer = reference if backend == "eager" else _ours(shape, backend, seed)
        layer.load_state_dict(reference.state_dict())
        impls.append(Implementation(f"moe-core {backend}", layer, lambda x, m=layer: m(x).output))
    if peers:
        peer_name = "HF Qwen2MoeSparseMoeBlock" if shape.shared else "HF MixtralSparseMoeBlock"
        for implementation in ("eager", "grouped_mm", "batched_mm"):
            if implementation == "batched_mm" and _batched_mm_bytes(shape) > 2e9:
                continue  # gathers a weight copy per (token, slot): reported as n/a
            block = _hf_block(shape, reference, implementation)
            impls.append(Implementation(f"{peer_name} {implementation}", block, lambda x, m=block: m(x[None])[0]))
        ds_layer = _deepspeed_moe(shape, reference) if deepspeed else None
        if ds_layer is not None:
            impls.append(Implementation("DeepSpeed MoE (top-2, no drop)", ds_layer, lambda x, m=ds_layer: m(x[None])[0][0]))
    return impls


def _time(fn: Callable[[], object]) -> float:
    """Wall seconds of ``fn()``; where CUDA is in use, queued kernels are waited for before and after."""
    if torch.cuda.is_initialized():
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if torch.cuda.is_initialized():
        torch.cuda.synchronize()
    return time.perf_counter() - start


def _minor_faults() -> int:
    """Minor page faults of this process so far (fresh memory the kernel had to map and zero)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _time_and_faults(fn: Callable[[], object]) -> tuple[float, int]:
    before = _minor_faults()
    seconds = _time(fn)
    return seconds, _minor_faults() - before


def benchmark_inputs(shape: Shape, seed: int = 0) -> tuple[Tensor, Tensor]:
    """The input ``x`` and output gradient that ``measure(shape, seed=seed)`` times."""
    generator = torch.Generator().manual_seed(seed + 2)
    x = torch.randn(shape.tokens, shape.d_model, generator=generator)
    return x, torch.randn(shape.tokens, shape.d_model, generator=generator)


def measure(shape: Shape, repeats: int, warmup: int = 1, seed: int = 0, peers: bool = True,
            processes: int = 1, malloc_tunables: str | None = None) -> dict[str, dict[str, float]]:
    """Median forward and forward+backward seconds per implementation (interleaved repeats).

    ``processes > 1`` runs the whole measurement that many times, each in a fresh Python process
    (one after the other), and pools their repeats: on CPU a process's allocation history moves
    every time by up to 15 points, so one process's repeats understate the run-to-run spread.
    ``malloc_tunables`` (e.g. :data:`MALLOC_TUNABLES`) is added to those processes'
    ``GLIBC_TUNABLES``; with it the measurement always runs in fresh processes.
    """
    if processes == 1 and malloc_tunables is None:
        samples, max_diff = _measure_samples(shape, repeats, warmup, seed, peers)
    else:
        context = multiprocessing.get_context("spawn")
        runs = []
        with glibc_tunables(malloc_tunables):
            for _ in range(processes):
                with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
                    runs.append(pool.submit(_measure_samples, shape, repeats, warmup, seed, peers).result())
        samples = pool_samples([run for run, _ in runs])
        max_diff = {name: max(diffs[name] for _, diffs in runs) for name in runs[0][1]}
    result = summarise_samples(samples)
    for name, diff in max_diff.items():
        result[name]["max_abs_diff"] = diff
    return result


@contextlib.contextmanager
def glibc_tunables(tunables: str | None):
    """Append ``tunables`` to ``GLIBC_TUNABLES`` for the processes started inside the block."""
    previous = os.environ.get("GLIBC_TUNABLES")
    if tunables:
        os.environ["GLIBC_TUNABLES"] = f"{previous}:{tunables}" if previous else tunables
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("GLIBC_TUNABLES", None)
        else:
            os.environ["GLIBC_TUNABLES"] = previous


def pool_samples(runs: list[dict[str, dict[str, list[float]]]]) -> dict[str, dict[str, list[float]]]:
    """Concatenate several processes' :func:`interleaved_samples`, key by key."""
    return {name: {key: [v for run in runs for v in run[name][key]] for key in runs[0][name]} for name in runs[0]}


def _measure_samples(shape: Shape, repeats: int, warmup: int, seed: int,
                     peers: bool) -> tuple[dict[str, dict[str, list[float]]], dict[str, float]]:
    """One process's raw samples (see :func:`interleaved_samples`) and each implementation's max
    abs difference from moe-core eager."""
    impls = build_implementations(shape, seed, peers)
    x, grad = benchmark_inputs(shape, seed)
    return interleaved_samples(impls, x, grad, repeats, warmup), max_abs_diffs(impls, x)


def max_abs_diffs(impls: list[Implementation], x: Tensor) -> dict[str, float]:
    """Each implementation's (but the dense first) max abs output difference from moe-core eager
    (the second), computed in float32."""
    with torch.no_grad():
        reference = impls[1].run(x).float()
        return {i.name: float((i.run(x).float() - reference).abs().max()) for i in impls[1:]}


def run_forward(impl: Implementation, x: Tensor) -> None:
    """The timed forward: under ``no_grad``."""
    with torch.no_grad():
        impl.run(x)


def run_forward_backward(impl: Implementation, x: Tensor, grad: Tensor) -> None:
    """The timed forward+backward: gradients of the input and of every weight."""
    impl.run(x.clone().requires_grad_()).backward(grad)


def time_against_dense(impls: list[Implementation], x: Tensor, grad: Tensor, repeats: int,
                       warmup: int = 1) -> dict[str, dict[str, float]]:
    """:func:`summarise_samples` of :func:`interleaved_samples` (one process)."""
    return summarise_samples(interleaved_samples(impls, x, grad, repeats, warmup))


def interleaved_samples(impls: list[Implementation], x: Tensor, grad: Tensor, repeats: int,
                        warmup: int = 1) -> dict[str, dict[str, list[float]]]:
    """Interleaved forward (``no_grad``) and forward+backward timings of ``impls``, the first being
    the dense reference: per implementation, for each phase the seconds of every repeat, its ratio
    ``%`` to the dense run timed in the same round, and its minor page faults (how much fresh
    memory the call had mapped: on CPU this varies with the process's allocation history and
    moves the times)."""
    samples: dict[str, dict[str, list[float]]] = {
        i.name: {f"{phase}{key}": [] for phase in PHASES for key in ("", " %", " faults")} for i in impls}
    for rep in range(warmup + repeats):
        for impl in impls:
            fwd, fwd_faults = _time_and_faults(lambda impl=impl: run_forward(impl, x))
            impl.module.zero_grad(set_to_none=True)
            both, both_faults = _time_and_faults(lambda impl=impl: run_forward_backward(impl, x, grad))
            impl.module.zero_grad(set_to_none=True)
            if rep >= warmup:
                for phase, seconds, faults in (("fwd", fwd, fwd_faults), ("fwd+bwd", both, both_faults)):
                    samples[impl.name][phase].append(seconds)
                    samples[impl.name][f"{phase} faults"].append(faults)
    dense = samples[impls[0].name]
    for t in samples.values():
        for phase in PHASES:
            t[f"{phase} %"] = [100 * d / s for d, s in zip(dense[phase], t[phase])]
    return samples


def summarise_samples(samples: dict[str, dict[str, list[float]]]) -> dict[str, dict[str, float]]:
    """Per implementation and phase: the median seconds, the median and quartiles of the per-repeat
    ``%`` of dense, and the median page faults per call."""
    result: dict[str, dict[str, float]] = {}
    for name, t in samples.items():
        result[name] = {}
        for phase in PHASES:
            low, mid, high = _quartiles(t[f"{phase} %"])
            result[name] |= {phase: statistics.median(t[phase]), f"{phase} faults": statistics.median(t[f"{phase} faults"]),
                             f"{phase} %": mid, f"{phase} % q1": low, f"{phase} % q3": high}
    return result


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    """First quartile, median and third quartile (``statistics.quantiles``' inclusive method)."""
    if len(values) == 1:
        return values[0], values[0], values[0]
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


def _percent(t: dict[str, float], phase: str) -> str:
    """Median per-repeat % of dense speed with its interquartile range, e.g. ``93% (88-97)``."""
    return f"{t[f'{phase} %']:.0f}% ({t[f'{phase} % q1']:.0f}–{t[f'{phase} % q3']:.0f})"


def _table(shape: Shape, result: dict[str, dict[str, float]]) -> str:
    rows = []
    for name, t in result.items():
        rows.append([name, f"{1e3 * t['fwd']:.2f}", _percent(t, "fwd"), f"{1e3 * t['fwd+bwd']:.2f}",
                     _percent(t, "fwd+bwd"), f"{t['fwd faults']:,.0f} / {t['fwd+bwd faults']:,.0f}",
                     "—" if "max_abs_diff" not in t else f"{t['max_abs_diff']:.1e}"])
    return markdown_table(["implementation", "fwd ms", "fwd % of dense (IQR)", "fwd+bwd ms",
                           "fwd+bwd % of dense (IQR)", "page faults fwd / fwd+bwd", "max abs diff vs eager"], rows)


def _skipped_note(shape: Shape) -> str:
    notes = []
    if _batched_mm_bytes(shape) > 2e9:
        notes.append(f"HF batched_mm: n/a (would allocate {_batched_mm_bytes(shape) / 2**30:.0f} GiB of gathered weights)")
    if shape.top_k > 2 or shape.shared:
        notes.append("DeepSpeed MoE: n/a (its gate supports top-1/top-2 only and has no shared experts)")
    return ("\n\n" + "; ".join(notes) + ".") if notes else ""


def _plot(results: list[tuple[Shape, dict[str, dict[str, float]]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5), sharey=True)
    names = [n for n in results[0][1] if not n.startswith("dense")]
    width = 0.8 / len(names)
    for ax, phase in zip(axes, ("fwd", "fwd+bwd")):
        for i, name in enumerate(names):
            values = [r[name][f"{phase} %"] if name in r else 0 for _, r in results]
            spread = [[r[name][f"{phase} %"] - r[name][f"{phase} % q1"] if name in r else 0 for _, r in results],
                      [r[name][f"{phase} % q3"] - r[name][f"{phase} %"] if name in r else 0 for _, r in results]]
            ax.bar([s + i * width for s in range(len(results))], values, width, yerr=spread, capsize=2, label=name)
        ax.axhline(100, color="black", lw=0.8)
        ax.set_xticks([s + 0.4 - width / 2 for s in range(len(results))])
        ax.set_xticklabels([f"T={s.tokens}\nE={s.n_experts} k={s.top_k}" + (" +sh" if s.shared else "")
                            for s, _ in results], fontsize=8)
        ax.set_title(f"{phase}: % of dense FFN speed (higher is better)")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small shapes, few repeats (smoke test)")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None, help="BENCHMARKS.md path (default: the package's)")
    parser.add_argument("--shape", type=int, choices=range(len(SHAPES)), default=None,
                        help="measure only SHAPES[i] and print its table, writing nothing (repeat runs)")
    parser.add_argument("--processes", type=int, default=None,
                        help="fresh processes per shape whose repeats are pooled (default 3; 1 with --quick)")
    parser.add_argument("--default-malloc", action="store_true",
                        help="keep glibc's default malloc settings (fresh pages mapped per call; the default with --quick)")
    args = parser.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 9)
    processes = args.processes or (1 if args.quick else 3)
    tunables = None if args.default_malloc or args.quick else MALLOC_TUNABLES
    if args.shape is not None:
        shape = SHAPES[args.shape]
        print(f"{shape.label}\n{_table(shape, measure(shape, repeats, processes=processes, malloc_tunables=tunables))}")
        return 0
    shapes = QUICK_SHAPES if args.quick else SHAPES
    package_dir = Path(__file__).resolve().parents[3]
    out = args.out or (package_dir / ("BENCHMARKS.quick.md" if args.quick else "BENCHMARKS.md"))
    results = []
    for shape in shapes:
        _log.info("measuring %s", shape.label)
        results.append((shape, measure(shape, repeats, processes=processes, malloc_tunables=tunables)))
        print(f"\n{shape.label}\n{_table(shape, results[-1][1])}", flush=True)
    figure = out.parent / "benchmarks" / "figures" / ("speed_vs_dense.quick.png" if args.quick else "speed_vs_dense.png")
    _plot(results, figure)
    command = "make bench-moe-core" if not args.quick else "uv run python packages/moe-core/benchmarks/run.py --quick"
    sections = [(shape.label, _table(shape, result) + _skipped_note(shape)) for shape, result in results]
    sections.append(("Plot", f"![speed vs dense]({figure.relative_to(out.parent)})"))
    runs = (f"{processes} fresh processes run one after the other, each timing {repeats} interleaved repeats after "
            f"one warm-up, their {processes * repeats} repeats pooled" if processes > 1 else
            f"{repeats} interleaved repeats after one warm-up in one process")
    allocator = (f"glibc malloc set by `GLIBC_TUNABLES={tunables}` for every implementation, so that no call pays "
                 "the kernel for mapping and zeroing fresh pages (the default settings and their effect: package "
                 "README)" if tunables else "glibc's default malloc settings")
    notes = (f"fp32 on CPU, {torch.get_num_threads()} threads; {runs}; {allocator}; in each process all implementations "
             "have the same weights, input and routing. "
             "`% of dense` = dense time / implementation time, against a dense SwiGLU FFN with hidden size "
             "(k + shared) * f on the same tokens (same active FLOPs), computed per repeat against the dense run "
             "timed in the same round: the median, and in brackets the interquartile range over repeats "
             "(the ms columns are medians of the times). Pooling fresh processes matters on CPU: one process's "
             "allocation history moves all its times by up to 15 points. `page faults` = median minor page faults per call "
             "(fresh memory the kernel mapped and zeroed during the call; how many depends on the process's "
             "allocation history, see the package README). Forward runs under `no_grad`; "
             "forward+backward takes the gradient of the input and of all weights. The Triton backend needs a "
             "GPU and is not timed here (its kernels are checked for correctness on CPU under "
             "TRITON_INTERPRET=1 in the tests).")
    write_benchmarks_md(out, "moe-core benchmark: MoE layer speed vs dense FFN and peers", command=command,
                        sections=sections, notes=notes)
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
