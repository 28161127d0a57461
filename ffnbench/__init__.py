"""ffnbench: one feed-forward network, backpropagation seven ways (pure Python, NumPy, Numba,
PyTorch, JAX, C, scikit-learn's MLP), one shared harness."""
__version__ = "0.1.0"
