"""Benchmark bundles where they run: one measurement implementation for the device and the build machine.

``edgefin-run bench`` (TensorFlow-free, on the device) and the toolkit's ``edgefin bench`` (on the build
machine, under hardware profiles, with the Keras model beside it) spawn the same worker
(:mod:`.worker`, run by path in a fresh process per bundle) which times the bundle with the same code
(:mod:`.measure`, :mod:`.timing`, :mod:`.engines`), so a device figure and a build-machine figure mean
the same thing. :mod:`.device` drives a device run and defines its results file (:data:`.device.SCHEMA`).

Kept import-free: the worker applies its limits (CPU affinity, thread counts, address-space cap)
before NumPy or an engine is loaded.
"""
