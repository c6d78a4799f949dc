"""The scoring API (FastAPI): `create_app()` builds it; `leadscore serve` runs it with uvicorn."""

from leadscore.serving.api.app import create_app

__all__ = ["create_app"]
