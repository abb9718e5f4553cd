"""PetroStream benchmarks (``make bench`` / ``python -m bench.run``): the hot paths on the local emulator with
the real 3W sample, each figure a ratio against a baseline measured in the same run. See docs/benchmarks.md.

One module per section (``bench.producer``, ``bench.inference``, ``bench.training``, ``bench.queries``,
``bench.model``), shared setup in ``bench.common``, the readable table in ``bench.report``.
"""
