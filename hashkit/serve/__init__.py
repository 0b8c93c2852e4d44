"""The search service behind ``hashkit serve``: a JSON API and a web page over code files.

- :mod:`.collection`: the served code files (one per code length), exact Hamming search, image files;
- :mod:`.query_encoder`: the model that encodes uploaded images and draws their attention overlays;
- :mod:`.uploads`: decoding uploaded bytes into images (4xx errors for anything else);
- :mod:`.body_limit`: the request-size bound (ASGI middleware);
- :mod:`.app`: the FastAPI application and its routes; ``static/`` holds the page.

FastAPI, uvicorn and python-multipart are the ``serve`` extra (``pip install 'hashkit[serve]'``); they are
imported only by :mod:`.app` and the ``serve`` command (:func:`require_web` names the extra when missing).
"""

from __future__ import annotations

from hashkit.errors import HashkitError


def require_web() -> None:
    """Raise a :class:`HashkitError` naming the ``serve`` extra when FastAPI or its helpers are missing."""
    try:
        import fastapi  # noqa: F401
        import python_multipart  # noqa: F401 - form and file uploads
    except ImportError as exc:
        raise HashkitError(f"the search service needs FastAPI, uvicorn and python-multipart: "
                           f"pip install 'hashkit[serve]' ({exc})") from None
