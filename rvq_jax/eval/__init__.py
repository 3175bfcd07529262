"""Metrics, figures and WAV writing."""
