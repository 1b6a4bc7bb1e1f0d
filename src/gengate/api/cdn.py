"""``/cdn/<key>``: result files, without a key (their names are unguessable).

Local disk and the object store's proxy mode stream the file from gengate; redirect mode
answers 307 to a short-lived presigned URL of the object, public mode 307 to its public
URL. ``Range`` (one range), ``If-Range`` and content types behave the same in every mode:
the object store honours them itself after a redirect. Results written before an object
store was configured are served from the local directory until they are moved.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from gengate.api.envelope import json_response
from gengate.byterange import RangeNotSatisfiable, parse_range
from gengate.errors import NotFound
from gengate.runtime import Runtime
from gengate.storage import Storage, check_key

__all__ = ["serve_result"]


async def serve_result(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    key = str(request.path_params["key"])
    check_key(key)
    stores = runtime.stores
    objects = stores.objects
    if objects is not None:
        try:
            if objects.config.serve == "proxy":
                return await _stream(objects, key, request)
            await objects.stat(key)
            target = (await objects.presign(key) if objects.config.serve == "redirect"
                      else objects.url_for(key))
            return RedirectResponse(target, 307, headers={"cache-control": "no-store"})
        except NotFound:
            pass  # not moved yet: the local directory may still have it
    return await _stream(stores.local, key, request)


async def _stream(storage: Storage, key: str, request: Request) -> Response:
    info = await storage.stat(key)
    headers = {"accept-ranges": "bytes", "content-type": info.content_type}
    if info.etag:
        headers["etag"] = info.etag
    if info.last_modified:
        headers["last-modified"] = info.last_modified
    wanted = request.headers.get("range")
    if_range = request.headers.get("if-range")
    if if_range is not None and if_range not in (info.etag, info.last_modified):
        wanted = None  # the file changed since the client's copy: send all of it
    try:
        span = parse_range(wanted, info.size)
    except RangeNotSatisfiable:
        return json_response({"status": "FAILED", "message": "Range Not Satisfiable",
                              "data": None}, 416, {"content-range": f"bytes */{info.size}"})
    status, (start, end) = (200, (0, info.size)) if span is None else (206, span)
    if span is not None:
        headers["content-range"] = f"bytes {start}-{end - 1}/{info.size}"
    headers["content-length"] = str(end - start)
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers)
    return StreamingResponse(storage.read(key, start, end), status_code=status,
                             headers=headers, media_type=info.content_type)
