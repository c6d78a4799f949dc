"""Serving: the scorer runtime, reasons, the FastAPI app and batch scoring.

Depends on :mod:`features` only; never imports :mod:`training`.
"""
