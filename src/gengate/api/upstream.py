"""``POST /upstream/notify/{accountId}/{token}``: an upstream tells of a task's change
(midjourney-proxy's ``notifyHook``, see :mod:`gengate.upstream_notify`).

No API key: the token in the path is the credential, and a wrong one is answered as an
unknown path. The body is read (bounded) only for the task's id and status; an ended task
is polled at once by the worker that follows it. Any other call is answered 204 as well:
the upstream only logs what it is told, and the rounds at the account's interval go on.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gengate.api.envelope import read_request
from gengate.errors import NotFound
from gengate.runtime import Runtime
from gengate.upstream_notify import MAX_BODY, ended_task_of

__all__ = ["upstream_notify"]


async def upstream_notify(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    links = runtime.notify_links
    account_id = int(request.path_params["account_id"])
    token = str(request.path_params["token"])
    if links is None or not links.valid(account_id, token):
        raise NotFound("Not Found")
    task_id = ended_task_of(await read_request(request, MAX_BODY))
    if task_id is not None:
        await runtime.upstream_changed(account_id, task_id)
    return Response(status_code=204)
