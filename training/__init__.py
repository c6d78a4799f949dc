"""Training: labels, time splits, models, calibration, thresholds, evaluation, MLflow.

Depends on :mod:`features`; never imported by :mod:`serving`.
"""
