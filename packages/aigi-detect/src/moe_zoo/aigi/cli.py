"""``moe-zoo aigi ...`` (work in progress)."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_subparsers(dest="verb", metavar="VERB")
