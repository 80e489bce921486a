"""``moe-zoo nerf train|eval|render|export|bench|demo``."""

from __future__ import annotations

import argparse
from importlib.resources import files
from pathlib import Path

from moe_zoo.core.argtypes import non_negative_int, positive_float, positive_int

MODELS = ("switch-nerf-pp", "switch-nerf-homogeneous", "switch-nerf-v1", "hash-nerf")
SHIPPED = "weights/switch_nerf_pp.safetensors"


def _folder_of(path: str, option: str) -> None:
    from moe_zoo.core import InputError

    folder = Path(path).resolve().parent
    if not folder.is_dir():
        raise InputError(f"{option} {path}: folder {folder} does not exist")


def _train(args: argparse.Namespace) -> int:
    from moe_zoo.core import InputError
    from moe_zoo.nerf.training import TrainConfig, train

    if args.ship and (args.out or args.model != "switch-nerf-pp" or args.scene != "builtin"):
        raise InputError("--ship writes the package's switch-nerf-pp weights for the built-in scene and takes no --out")
    out = str(files("moe_zoo.nerf").joinpath(SHIPPED)) if args.ship else (args.out or f"nerf-{args.model}.safetensors")
    _folder_of(out, "--out")
    if args.state:
        _folder_of(args.state, "--state")
    overrides = {k: v for k, v in {"steps": args.steps, "rays": args.rays, "lr": args.lr}.items() if v is not None}
    config = TrainConfig(model=args.model, seed=args.seed, **overrides)
    result = train(args.scene, config, checkpoint=out, state_path=args.state, force_restart=args.force_restart,
                   progress=not args.quiet, scene_kwargs={"downscale": args.downscale} if args.downscale else None)
    print(f"trained {args.model} for {config.steps} steps in {result.seconds:.0f} s; checkpoint: {out}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from moe_zoo.nerf.data import load_scene
    from moe_zoo.nerf.predict import load
    from moe_zoo.nerf.training import evaluate

    scene = load_scene(args.scene)
    metrics = evaluate(load(args.model), scene)
    print(f"{scene.name}: {len(scene.val)} held-out views, PSNR {metrics['psnr']:.2f} dB, SSIM {metrics['ssim']:.3f}, "
          f"{metrics['render_s']:.2f} s per view (LPIPS not computed: no offline weights)")
    return 0


def _render(args: argparse.Namespace) -> int:
    import numpy as np
    from PIL import Image

    from moe_zoo.nerf.data import load_scene
    from moe_zoo.nerf.predict import load
    from moe_zoo.nerf.renderer import Cameras, render, write_flythrough

    _folder_of(args.out, "--out")
    scene, model = load_scene(args.scene), load(args.model)
    if args.out.endswith(".mp4"):
        write_flythrough(model, scene, args.out, n_frames=args.frames)
        print(f"wrote a {args.frames}-frame fly-through to {args.out}")
        return 0
    images = render(model, Cameras.from_scene(scene, scene.val[: args.views]))
    strip = np.concatenate(list((images.numpy() * 255).round().astype(np.uint8)), 1)
    Image.fromarray(strip).save(args.out)
    print(f"wrote {len(images)} held-out views side by side to {args.out}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from moe_zoo.nerf.meshing import export
    from moe_zoo.nerf.predict import load

    _folder_of(args.out, "--out")
    path = export(load(args.model), args.out, resolution=args.resolution, level=args.level)
    print(f"wrote {path}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    from moe_zoo.nerf.benchmark import main

    return main(["--quick"] if args.quick else [])


def _demo(args: argparse.Namespace) -> int:
    from moe_zoo.nerf.demo import run_demo

    print(run_demo(views=args.views))
    return 0


def configure(parser: argparse.ArgumentParser) -> None:
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    scene_help = "'builtin' (offline city scene), a Mega-NeRF/Mill19 folder or a transforms.json folder"
    model_help = "checkpoint path (default: shipped Switch-NeRF++ weights for the built-in scene)"

    tr = verbs.add_parser("train", help="train a field on a scene")
    tr.add_argument("--scene", default="builtin", help=scene_help)
    tr.add_argument("--model", default="switch-nerf-pp", choices=MODELS)
    tr.add_argument("--out", help="checkpoint path (default: nerf-<model>.safetensors)")
    tr.add_argument("--ship", action="store_true", help="overwrite the package's shipped weights (how they were made)")
    tr.add_argument("--state", help="resumable training-state file (resumed only with the same settings)")
    tr.add_argument("--force-restart", action="store_true", help="overwrite a --state written with other settings")
    tr.add_argument("--steps", type=positive_int)
    tr.add_argument("--rays", type=positive_int, help="rays per step (default 1024)")
    tr.add_argument("--lr", type=positive_float)
    tr.add_argument("--downscale", type=positive_int, help="shrink the images of a real scene by this factor")
    tr.add_argument("--seed", type=non_negative_int, default=0)
    tr.add_argument("--quiet", action="store_true", help="no progress bar")
    tr.set_defaults(func=_train)

    ev = verbs.add_parser("eval", help="PSNR / SSIM on the held-out views")
    ev.add_argument("--scene", default="builtin", help=scene_help)
    ev.add_argument("--model", help=model_help)
    ev.set_defaults(func=_eval)

    re = verbs.add_parser("render", help="render held-out views (.png) or a fly-through video (.mp4)")
    re.add_argument("--scene", default="builtin", help=scene_help)
    re.add_argument("--model", help=model_help)
    re.add_argument("--out", required=True, help="output .png (held-out views) or .mp4 (fly-through)")
    re.add_argument("--views", type=positive_int, default=4)
    re.add_argument("--frames", type=positive_int, default=48)
    re.set_defaults(func=_render)

    ex = verbs.add_parser("export", help="mesh (.ply/.obj/.glb) or point cloud (.pcd/.xyz) of the learned density")
    ex.add_argument("--model", help=model_help)
    ex.add_argument("--out", required=True)
    ex.add_argument("--resolution", type=positive_int, default=96)
    ex.add_argument("--level", type=positive_float, default=10.0, help="density iso-level")
    ex.set_defaults(func=_export)

    be = verbs.add_parser("bench", help="Switch-NeRF++ vs baselines over 3 seeds; writes BENCHMARKS.md")
    be.add_argument("--quick", action="store_true", help="small smoke run (not committed)")
    be.set_defaults(func=_bench)

    de = verbs.add_parser("demo", help="render held-out views of the built-in scene with the shipped weights")
    de.add_argument("--views", type=positive_int, default=2)
    de.set_defaults(func=_demo)
