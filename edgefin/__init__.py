"""edgefin: put compressed deep models for credit and risk scoring onto constrained devices.

Heavy modules (TensorFlow) are imported lazily; ``import edgefin`` is cheap.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
