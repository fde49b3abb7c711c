"""The ASGI entry point uvicorn imports: `app.asgi:app`."""

from app.core.logging import configure_logging
from app.main import create_app

configure_logging()  # again in each `--workers` process uvicorn starts
app = create_app()
