"""``make bench-aigi-detect``: OmniAID vs baselines, cross-generator protocol; writes BENCHMARKS.md.

See :mod:`moe_zoo.aigi.benchmark` for the protocol and options (``--quick``, ``--seeds``,
``--report-only``)."""

from moe_zoo.aigi.benchmark import main

if __name__ == "__main__":
    raise SystemExit(main())
