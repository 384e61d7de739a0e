"""Who a REST request is: the holder of its API token (scope checked), or its client address.

Tokens are sent as ``Authorization: Bearer vfy_...``; their name is the caller of the request's
attempts in the audit log and the 1:N throttle. Without tokens (a server on localhost started
with ``--no-api-auth``) the caller is the client's address.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio.to_thread
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from enrollment.service import Service

BEARER = HTTPBearer(auto_error=False, scheme_name="API token",
                    description="`python -m verify token create NAME --scope verify|admin` prints one")


def token_caller(name: str) -> str:
    """The caller of a token's attempts."""
    return f"api:token:{name}"


def address_caller(request: Request) -> str:
    """The caller of an unauthenticated request's attempts: its client address."""
    return f"api:{request.client.host if request.client else 'unknown'}"


class ApiAuth:
    """Checks each request's token against the service's token registry.

    Args:
        service: whose store holds the tokens.
        required: False only for a localhost server started with ``--no-api-auth``.
    """

    def __init__(self, service: Service, required: bool = True) -> None:
        self.service = service
        self.required = required

    def needs(self, scope: str) -> Callable[..., Awaitable[str]]:
        """A FastAPI dependency returning the request's caller if its token allows ``scope``.

        Raises (from the dependency):
            InvalidTokenError: no token, or an unknown, revoked or malformed one (401).
            TokenScopeError: the token's scope does not allow ``scope`` (403).
        """

        async def caller(request: Request,
                         credentials: HTTPAuthorizationCredentials | None = Depends(BEARER)) -> str:
            if not self.required:
                return address_caller(request)
            secret = credentials.credentials if credentials is not None else None
            token = await anyio.to_thread.run_sync(self.service.tokens.authenticate, secret, scope)
            return token_caller(token.name)

        return caller
