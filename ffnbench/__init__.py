"""ffnbench: one feed-forward network, backpropagation four ways, one shared harness."""
__version__ = "0.1.0"
