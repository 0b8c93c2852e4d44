"""The FastAPI application of ``hashkit serve`` (import only with the ``serve`` extra installed).

Routes (JSON unless noted; every error is ``{"detail": "..."}`` with a 4xx status):

=========================================  =====================================================================
``GET /``                                  the web page (HTML; ``/static/app.js``, ``/static/style.css``)
``GET /api/health``                        ``{"status": "ok"}``
``GET /api/index``                         code lengths, sizes, models, attention maps, limits
``GET /api/items?bits&offset&limit``       database items ``{id, path, label}`` (to pick a query)
``GET /api/images/{id}?bits``              the image file of a database item (image folder only)
``GET /api/search/id/{id}?bits&k&radius``  search with a database item's code (``&attention=true``: overlays)
``POST /api/search/code``                  JSON ``{"codes": [hex or ±1 list, ...], "bits", "k", "radius"}``
``POST /api/search/image``                 multipart: ``image`` (one or more files), ``bits``, ``k``,
                                           ``radius``, ``attention``
=========================================  =====================================================================

Status codes: 400 bad parameters or undecodable image, 404 unknown id / code length / file, 413 request or
image too large, 415 an upload that is not an image, 422 malformed request (FastAPI's validation).
"""

import functools
from importlib import resources
from typing import List, Optional, Union

from fastapi import FastAPI, File, Form, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from pydantic import BaseModel

from hashkit.errors import HashkitError
from hashkit.serve.body_limit import BodySizeLimit
from hashkit.serve.collection import NotFound, page_of_items
from hashkit.serve.service import SearchService
from hashkit.serve.uploads import BadUpload, decode_image

#: the page's own files (nothing else is served from the package)
STATIC = {"app.js": "text/javascript", "style.css": "text/css"}
IMAGE_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".bmp": "image/bmp",
               ".gif": "image/gif", ".webp": "image/webp", ".tif": "image/tiff", ".tiff": "image/tiff"}
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
                               "frame-ancestors 'none'",
}


class CodeQuery(BaseModel):
    codes: List[Union[str, List[float]]]
    bits: Optional[int] = None
    k: Optional[int] = None
    radius: Optional[int] = None


def _static(name: str) -> str:
    return (resources.files("hashkit.serve") / "static" / name).read_text(encoding="utf-8")


def create_app(service: SearchService):
    """The ASGI application: the FastAPI app (its ``.fastapi`` attribute) inside the security headers and the
    request-size bound."""
    app = FastAPI(title="hashkit search", docs_url="/api/docs", redoc_url=None, openapi_url="/api/openapi.json")
    app.state.service = service

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, exc: NotFound):
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(BadUpload)
    async def _bad_upload(request: Request, exc: BadUpload):
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    @app.exception_handler(HashkitError)
    async def _bad_request(request: Request, exc: HashkitError):
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.get("/", response_class=HTMLResponse)
    def page():
        return HTMLResponse(_static("index.html"))

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon():
        return Response(status_code=204)

    @app.get("/static/{name}")
    def static(name: str):
        if name not in STATIC:
            raise NotFound(f"no static file {name!r}")
        return Response(_static(name), media_type=STATIC[name])

    # cheap routes are coroutines (no thread hand-off); encoding runs on the thread pool
    @app.get("/api/health")
    async def health():
        return {"status": "ok"}

    @app.get("/api/index")
    async def index():
        return service.info()

    @app.get("/api/items")
    async def items(bits: Optional[int] = None, offset: int = Query(0, ge=0), limit: int = Query(24, ge=1, le=200)):
        return {"bits": service.collection.index(bits).num_bits,
                "items": page_of_items(service.collection.index(bits), offset, limit)}

    @app.get("/api/images/{item_id}")
    def image(item_id: int, bits: Optional[int] = None):
        path = service.collection.image_path(bits, item_id)
        media = IMAGE_TYPES.get(path.suffix.lower())
        if media is None:
            raise NotFound(f"item {item_id} is not an image file")
        return FileResponse(path, media_type=media, headers={"Cache-Control": "max-age=3600"})

    @app.get("/api/search/id/{item_id}")
    async def search_id(item_id: int, bits: Optional[int] = None, k: Optional[int] = None,
                        radius: Optional[int] = None, attention: bool = False):
        search = functools.partial(service.search_id, item_id, bits=bits, k=k, radius=radius, attention=attention)
        return await run_in_threadpool(search) if attention else search()  # overlays run the model

    @app.post("/api/search/code")
    async def search_code(query: CodeQuery):
        return service.search_codes(query.codes, bits=query.bits, k=query.k, radius=query.radius)

    @app.post("/api/search/image")
    def search_image(image: List[UploadFile] = File(...), bits: Optional[int] = Form(None),
                     k: Optional[int] = Form(None), radius: Optional[int] = Form(None),
                     attention: bool = Form(False)):
        limit = service.settings.max_queries
        if len(image) > limit:
            raise BadUpload(400, f"send at most {limit} images per request, found {len(image)}")
        decoded, budget = [], service.settings.max_pixels  # the pixel bound holds for the request as a whole
        for upload in image:
            name = upload.filename or "upload"
            decoded.append((name, decode_image(upload.file.read(), name, budget)))
            budget -= decoded[-1][1].width * decoded[-1][1].height
        return service.search_images(decoded, bits=bits, k=k, radius=radius, attention=attention)

    wrapped = BodySizeLimit(with_headers(app, SECURITY_HEADERS), service.settings.max_request_bytes)
    wrapped.fastapi = app
    return wrapped


def with_headers(app, headers: dict[str, str]):
    """An ASGI wrapper adding ``headers`` to every HTTP response that does not set them itself."""
    extra = [(key.lower().encode("latin-1"), value.encode("latin-1")) for key, value in headers.items()]

    async def wrapped(scope, receive, send):
        if scope["type"] != "http":
            await app(scope, receive, send)
            return

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                present = {key.lower() for key, _ in message.get("headers", ())}
                message = {**message, "headers": [*message.get("headers", ()),
                                                  *((k, v) for k, v in extra if k not in present)]}
            await send(message)

        await app(scope, receive, send_with_headers)

    return wrapped
