"""Benchmarks under hardware profiles, the recommendation, and the report.

Kept import-free on purpose: ``python -m edgefin.bench.worker`` imports this package first, and the
worker must apply its profile before anything heavy (NumPy, an engine) is loaded. Import from the
submodules: ``edgefin.bench.harness.run_bench``, ``edgefin.bench.profiles.get_profile``,
``edgefin.bench.recommend.recommend``, ``edgefin.bench.report.write_report``.
"""
