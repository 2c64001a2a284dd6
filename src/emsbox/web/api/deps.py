"""Who is asking: authentication by API token or session cookie, and role checks."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from emsbox.app import Service
from emsbox.web.accounts import Role

SESSION_COOKIE = "emsbox_session"
SETUP_FIRST = (
    "the first-start setup is not done: open the web app, or create an admin with "
    "`emsbox user add NAME --role admin`"
)

# auto_error=False: the dependency below decides, so that either credential may be used.
_bearer = HTTPBearer(auto_error=False, description="An API token: `Authorization: Bearer ...`")
_cookie = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, description="A web login session.")


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: a user (by session) or a token (named, with its own role)."""

    name: str
    role: Role
    user: str | None
    via: str  # "session" or "token"

    @property
    def label(self) -> str:
        """How the caller is named in logs."""
        return f"{self.via}:{self.name}"


async def service_of(request: Request) -> Service:
    """The running service the app was created for (async: a plain def would cost a thread hop)."""
    service: Service = request.app.state.service
    return service


ServiceDep = Annotated[Service, Depends(service_of)]


async def authenticate(
    service: ServiceDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    session: Annotated[str | None, Depends(_cookie)],
) -> Principal:
    """The caller, from a bearer token or a session cookie; 401 otherwise.

    Until an admin exists (the first-start setup), nothing but the setup itself is served.
    """
    if not service.accounts.has_admin():
        raise HTTPException(status.HTTP_403_FORBIDDEN, SETUP_FIRST)
    if bearer is not None:
        token = service.accounts.verify_token(bearer.credentials)
        if token is not None:
            return Principal(token.name, token.role, token.owner, "token")
    elif session is not None:
        user = service.accounts.verify_session(session)
        if user is not None:
            return Principal(user.name, user.role, user.name, "session")
    raise HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        "authentication required: log in or send an API token",
        headers={"WWW-Authenticate": "Bearer"},
    )


PrincipalDep = Annotated[Principal, Depends(authenticate)]


def require(role: Role) -> Callable[[Principal], Coroutine[Any, Any, Principal]]:
    """A dependency that lets through callers whose role includes ``role`` (else 403)."""

    async def check(principal: PrincipalDep) -> Principal:
        if not principal.role.allows(role):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"this needs the {role.value} role or higher"
            )
        return principal

    return check


Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
Installer = Annotated[Principal, Depends(require(Role.INSTALLER))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
