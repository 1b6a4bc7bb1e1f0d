"""The ceiling: a bare ASGI app answering a small JSON body, served the same way as gengate."""

BODY = b'{"status":"SUCCESS","message":"success","data":{"jobId":"0"}}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
