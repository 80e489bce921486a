"""The ``moe-zoo`` command line.

Built-in commands: ``moe-zoo list [PATTERN]``, ``moe-zoo demo`` (every package's demo) and
``moe-zoo --version``. Every domain package
adds ``moe-zoo <domain> <verb>`` through the ``moe_zoo.commands`` entry-point group; the entry
point names a function ``configure(parser)`` that adds the verbs as sub-parsers, each with
``set_defaults(func=handler)`` where ``handler(args) -> int | None``. Only the plug-in named on
the command line is imported, so ``moe-zoo --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import sys
from collections.abc import Sequence

from moe_zoo.core.errors import MoeZooError

COMMANDS_ENTRY_POINT_GROUP = "moe_zoo.commands"
_BUILTINS = {"list", "demo"}


def _command_plugins() -> dict[str, importlib.metadata.EntryPoint]:
    plugins = {}
    for entry_point in importlib.metadata.entry_points(group=COMMANDS_ENTRY_POINT_GROUP):
        if entry_point.name in _BUILTINS:
            raise RuntimeError(f"plug-in {entry_point.value} may not replace built-in command {entry_point.name!r}")
        plugins[entry_point.name] = entry_point
    return dict(sorted(plugins.items()))


def _version_text() -> str:
    from moe_zoo.core import __version__

    installed = []
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"] or ""
        if name.startswith("moe-zoo-") and name != "moe-zoo-core":
            installed.append(f"{name.removeprefix('moe-zoo-')} {dist.version}")
    extra = f"; packages: {', '.join(sorted(installed))}" if installed else ""
    return f"moe-zoo {__version__} (core {__version__}{extra})"


def _cmd_list(args: argparse.Namespace) -> int:
    from moe_zoo.core.registry import get_model_spec, list_models

    names = list_models(args.pattern, pretrained=args.pretrained)
    if not names:
        print("no models match" if args.pattern else "no models registered")
        return 0
    width = max(len(n) for n in names)
    for name in names:
        spec = get_model_spec(name)
        tag = "pretrained" if spec.has_weights else "          "
        print(f"{name:<{width}}  {tag}  {spec.summary}")
    return 0


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="moe-zoo", description="Mixture-of-Experts model zoo.")
    parser.add_argument("--version", action="version", version=_version_text())
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    list_parser = sub.add_parser("list", help="list registered models")
    list_parser.add_argument("pattern", nargs="?", help="glob filter, e.g. 'vad-*'")
    list_parser.add_argument("--pretrained", action="store_true", help="only models with shipped weights")
    list_parser.set_defaults(func=_cmd_list)
    demo_parser = sub.add_parser("demo", help="run the demo of every installed package")
    demo_parser.set_defaults(func=_cmd_demo_all)
    selected = next((a for a in argv if not a.startswith("-")), None)
    for name, entry_point in _command_plugins().items():
        domain = sub.add_parser(name, help=f"{name}: train|eval|predict|bench|demo ...")
        domain.set_defaults(func=lambda _args, p=domain: p.print_help() or 2)
        if name == selected:
            entry_point.load()(domain)
    return parser


def _cmd_demo_all(args: argparse.Namespace) -> int:
    """``moe-zoo demo``: each package's ``demo`` verb in turn (the README's main job)."""
    failures = []
    for name in _command_plugins():
        print(f"\n=== moe-zoo {name} demo ===", flush=True)
        if main([*(["-q"] if args.quiet else []), name, "demo"]) != 0:
            failures.append(name)
    if failures:
        print(f"moe-zoo: demo failed for: {', '.join(failures)}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0 if args.command is None else 2
    from moe_zoo.core.runtime import setup_logging

    setup_logging("DEBUG" if args.verbose else "WARNING" if args.quiet else "INFO")
    try:
        return int(args.func(args) or 0)
    except MoeZooError as err:
        print(f"moe-zoo: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
