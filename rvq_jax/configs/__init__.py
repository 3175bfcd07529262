"""Experiment configs (ml_collections), one `get_config()` per file, installed with the package:
`from rvq_jax.configs import model5`. From the repository root `--config=configs/model5.py` reads the
same files (`configs` links to this folder).
"""
