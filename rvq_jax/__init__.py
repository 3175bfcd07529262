"""rvq_jax: a residual-vector-quantized VAE for speech spectrograms, with a RealNVP prior."""

__version__ = "0.1.0"
