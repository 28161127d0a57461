"""ffnbench: one feed-forward network, backpropagation six ways (pure Python, NumPy, Numba,
PyTorch, JAX, C), one shared harness."""
__version__ = "0.1.0"
