"""Console sessions: an HMAC-signed cookie (HttpOnly, SameSite=Lax, Secure under HTTPS)
holding who signed in, until when, and the session's CSRF token; sign-in attempts counted
per client address across every node."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

import orjson

from gengate.errors import Forbidden, RateLimited
from gengate.ratelimit import RateLimiter
from gengate.store import Store

__all__ = ["COOKIE", "Session", "SessionSigner", "SignInLimiter"]

COOKIE = "gg_console"
#: the CSRF token of the sign-in form, before there is a session
PRE_COOKIE = "gg_signin"
LIFETIME = 12 * 3600


@dataclass(frozen=True, slots=True)
class Session:
    """``user_id`` 0 with ``operator``: signed in with the admin key."""

    user_id: int
    operator: bool
    csrf: str
    expires: float
    #: a hash of the admin key an operator session was made with: a new key ends it
    admin: str = ""

    def check_csrf(self, given: str | None) -> None:
        if not given or not secrets.compare_digest(given.encode(), self.csrf.encode()):
            raise Forbidden("The form is out of date (CSRF check failed); reload the page "
                            "and try again")


def admin_tag(admin_key: str) -> str:
    return hashlib.sha256(b"gengate-console-admin:" + admin_key.encode()).hexdigest()[:16]


class SessionSigner:
    def __init__(self, secret: bytes):
        self._key = hashlib.sha256(b"gengate-console-session:" + secret).digest()

    def _mac(self, payload: bytes) -> str:
        return base64.urlsafe_b64encode(
            hmac.new(self._key, payload, hashlib.sha256).digest()).decode().rstrip("=")

    def issue(self, user_id: int, operator: bool, now: float, admin: str = "") -> Session:
        return Session(user_id, operator, secrets.token_urlsafe(24), now + LIFETIME, admin)

    def dump(self, session: Session) -> str:
        payload = base64.urlsafe_b64encode(orjson.dumps(
            [session.user_id, session.operator, session.csrf, session.expires,
             session.admin])).decode().rstrip("=")
        return f"{payload}.{self._mac(payload.encode())}"

    def load(self, raw: str | None, now: float) -> Session | None:
        """The session in a cookie, or ``None`` if it is missing, forged or expired."""
        if not raw or "." not in raw or len(raw) > 1024:
            return None
        payload, _, mac = raw.rpartition(".")
        if not secrets.compare_digest(mac.encode(), self._mac(payload.encode()).encode()):
            return None
        try:
            data = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            session = Session(int(data[0]), bool(data[1]), str(data[2]), float(data[3]),
                              str(data[4]))
        except (ValueError, TypeError, IndexError, orjson.JSONDecodeError):
            return None
        return session if session.expires > now else None


class SignInLimiter:
    """At most ``attempts`` sign-in attempts per client address in ``window`` seconds,
    counted where every node sees them: in Redis when ``GENGATE_REDIS_URL`` is set (as the
    API's rate limits are), else in the database (the ``signin_attempts`` table); 429 with
    ``Retry-After`` past it."""

    def __init__(self, attempts: int = 10, window: int = 300):
        self.attempts = attempts
        self.window = window

    async def check(self, store: Store, limiter: RateLimiter, address: str,
                    now: float) -> None:
        if limiter.shared:
            wait = await limiter.signin_attempt(address, self.attempts, self.window)
        else:
            wait = await store.signin_attempt(address, now, self.window, self.attempts)
        if wait is not None:
            seconds = int(wait) + 1
            raise RateLimited(f"Too many sign-in attempts; try again in {seconds} seconds",
                              headers={"Retry-After": str(seconds)})
