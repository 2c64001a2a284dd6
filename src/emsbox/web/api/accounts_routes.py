"""Login and logout, the caller's own account, users (admin) and API tokens."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Cookie, HTTPException, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field, field_validator

from emsbox.app import Service
from emsbox.languages import Language
from emsbox.variables import BY_NAME
from emsbox.web.accounts import AccountError, LoginRefused, Role
from emsbox.web.api.deps import (
    SESSION_COOKIE,
    Admin,
    Principal,
    PrincipalDep,
    ServiceDep,
    Viewer,
)

router = APIRouter(tags=["accounts"])


class LoginIn(BaseModel):
    """User name and password."""

    name: str = Field(max_length=64)
    password: str = Field(max_length=1024)


class UserOut(BaseModel):
    """A user account (never its password)."""

    name: str
    role: Role


class MeOut(BaseModel):
    """The caller: a user by session, or an API token."""

    name: str
    role: Role
    user: str | None
    via: str


class NewUserIn(BaseModel):
    """A user to create."""

    name: str = Field(max_length=64)
    password: str = Field(max_length=1024)
    role: Role


class RoleIn(BaseModel):
    """A new role."""

    role: Role


class PasswordIn(BaseModel):
    """A new password; changing one's own needs the current one."""

    password: str = Field(max_length=1024)
    current_password: str | None = Field(default=None, max_length=1024)


class NewTokenIn(BaseModel):
    """An API token to create."""

    name: str = Field(max_length=64)
    role: Role = Role.VIEWER


class TokenOut(BaseModel):
    """An API token (its secret is shown only once, when created)."""

    id: str
    name: str
    role: Role
    owner: str | None
    created_at: float
    last_used_at: float | None = None


class NewTokenOut(TokenOut):
    """A new API token with its secret: store it now, it is never shown again."""

    secret: str


def _client(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def _refusal(exc: AccountError) -> HTTPException:
    return HTTPException(status.HTTP_400_BAD_REQUEST, str(exc))


@router.post("/login", response_model=UserOut, summary="Log in (sets a session cookie)")
async def login(
    body: LoginIn, request: Request, response: Response, service: ServiceDep
) -> UserOut:
    """Check a user's password and open a web session (cookie: secure, HTTP only, strict)."""
    try:
        user = await asyncio.to_thread(
            service.accounts.verify_password, body.name, body.password, _client(request)
        )
    except LoginRefused as exc:
        headers = (
            {"Retry-After": str(max(1, round(exc.retry_after_s)))} if exc.retry_after_s else {}
        )
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc), headers=headers) from None
    open_session(response, service, user.name)
    return UserOut(name=user.name, role=user.role)


def open_session(response: Response, service: Service, user: str) -> None:
    """Start a web session for ``user``: a secure, HTTP-only, same-site cookie."""
    lifetime_s = service.config.web.session_hours * 3600.0
    secret = service.accounts.create_session(user, lifetime_s)
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=int(lifetime_s),
        httponly=True,
        # Always Secure: behind a TLS-terminating proxy the browser still speaks HTTPS.
        secure=True,
        samesite="strict",
        path="/",
    )


@router.post("/logout", status_code=204, summary="Log out")
async def logout(
    response: Response,
    service: ServiceDep,
    _: PrincipalDep,
    session: Annotated[str | None, Cookie(alias=SESSION_COOKIE)] = None,
) -> None:
    """End the caller's web session."""
    if session is not None:
        service.accounts.end_session(session)
    response.delete_cookie(SESSION_COOKIE, path="/")


class SessionOut(BaseModel):
    """The web login this browser holds, if any."""

    user: MeOut | None = Field(description="The logged-in user, or null.")


@router.get("/session", response_model=SessionOut, summary="This browser's login, if any")
async def current_session(
    service: ServiceDep,
    session: Annotated[str | None, Cookie(alias=SESSION_COOKIE)] = None,
) -> SessionOut:
    """The user of the session cookie, or null: the web app asks this before anyone logs in,
    so not being logged in is an answer here, not an error (no authentication needed)."""
    if session is None or not service.accounts.has_admin():
        return SessionOut(user=None)
    user = service.accounts.verify_session(session)
    if user is None:
        return SessionOut(user=None)
    return SessionOut(user=MeOut(name=user.name, role=user.role, user=user.name, via="session"))


@router.get("/me", response_model=MeOut, summary="Who am I")
async def me(who: PrincipalDep) -> MeOut:
    """The caller's name, role and how they authenticated."""
    return MeOut(name=who.name, role=who.role, user=who.user, via=who.via)


WidgetKind = Literal[
    "overview",
    "tiles",
    "value",
    "gauge",
    "phases",
    "thd",
    "counters",
    "live_chart",
    "history_chart",
    "energy_chart",
]


class WidgetIn(BaseModel):
    """One widget of a dashboard: what it shows of which load."""

    model_config = ConfigDict(extra="forbid")

    kind: WidgetKind
    load: str = Field(default="", max_length=64, description="Empty for the site's overview.")
    vars: list[str] = Field(default_factory=list, max_length=8, description="Variable names.")
    range: Literal["hour", "day", "week", "month", "year"] | None = None
    period: Literal["day", "month"] | None = None

    @field_validator("vars")
    @classmethod
    def _known(cls, names: list[str]) -> list[str]:
        unknown = [n for n in names if n not in BY_NAME]
        if unknown:
            raise ValueError(f"unknown variable {unknown[0]!r}")
        return names


class DashboardIn(BaseModel):
    """A dashboard arranged by a user: a name and its widgets in order."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=40)
    widgets: list[WidgetIn] = Field(default_factory=list, max_length=24)


class PreferencesIn(BaseModel):
    """Choices of the user in the web app; a key left out stays as it is, null clears it."""

    model_config = ConfigDict(extra="forbid")

    language: Language | None = Field(default=None, description="Language of the web app.")
    dashboards: list[DashboardIn] | None = Field(
        default=None, max_length=20, description="The user's own dashboards, in order."
    )


def _session_user(who: Principal) -> str:
    if who.via != "session" or who.user is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "preferences belong to a logged-in user")
    return who.user


@router.get("/me/preferences", summary="My web app preferences")
async def get_preferences(who: Viewer, service: ServiceDep) -> dict[str, Any]:
    """What the logged-in user chose in the web app (language, ...)."""
    return service.accounts.preferences(_session_user(who))


@router.put("/me/preferences", summary="Change my web app preferences")
async def put_preferences(body: PreferencesIn, who: Viewer, service: ServiceDep) -> dict[str, Any]:
    """Store the given choices of the logged-in user; returns all of them."""
    changes = body.model_dump(exclude_unset=True)
    return service.accounts.set_preferences(_session_user(who), changes)


@router.put("/me/password", status_code=204, summary="Change my password")
async def change_own_password(
    body: PasswordIn,
    request: Request,
    who: Viewer,
    service: ServiceDep,
    session: Annotated[str | None, Cookie(alias=SESSION_COOKIE)] = None,
) -> None:
    """Change the caller's own password (needs the current one); the user's other sessions
    end, this one stays."""
    if who.via != "session" or who.user is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "log in as the user to change a password")
    try:
        await asyncio.to_thread(
            service.accounts.verify_password,
            who.user,
            body.current_password or "",
            _client(request),
        )
    except LoginRefused:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the current password is wrong") from None
    try:
        await asyncio.to_thread(
            service.accounts.set_password, who.user, body.password, keep_session=session
        )
    except AccountError as exc:
        raise _refusal(exc) from None


@router.get("/users", response_model=list[UserOut], summary="List users")
async def list_users(service: ServiceDep, _: Admin) -> list[UserOut]:
    """Every user account."""
    return [UserOut(name=u.name, role=u.role) for u in service.accounts.list_users()]


@router.post("/users", response_model=UserOut, status_code=201, summary="Add a user")
async def add_user(body: NewUserIn, service: ServiceDep, _: Admin) -> UserOut:
    """Create a user with a role."""
    try:
        user = await asyncio.to_thread(
            service.accounts.add_user, body.name, body.password, body.role
        )
    except AccountError as exc:
        raise _refusal(exc) from None
    return UserOut(name=user.name, role=user.role)


@router.delete("/users/{name}", status_code=204, summary="Remove a user")
async def remove_user(name: str, service: ServiceDep, _: Admin) -> None:
    """Remove a user, their sessions and tokens (the last admin cannot be removed)."""
    try:
        service.accounts.remove_user(name)
    except AccountError as exc:
        raise _refusal(exc) from None


@router.put("/users/{name}/role", response_model=UserOut, summary="Change a user's role")
async def set_role(name: str, body: RoleIn, service: ServiceDep, _: Admin) -> UserOut:
    """Give a user another role."""
    try:
        service.accounts.set_role(name, body.role)
    except AccountError as exc:
        raise _refusal(exc) from None
    return UserOut(name=name, role=body.role)


@router.put("/users/{name}/password", status_code=204, summary="Reset a user's password")
async def reset_password(name: str, body: PasswordIn, service: ServiceDep, _: Admin) -> None:
    """Set a new password for a user (ends their sessions)."""
    try:
        await asyncio.to_thread(service.accounts.set_password, name, body.password)
    except AccountError as exc:
        raise _refusal(exc) from None


def _token_out(info: object) -> TokenOut:
    return TokenOut.model_validate(info, from_attributes=True)


@router.get("/tokens", response_model=list[TokenOut], summary="List API tokens")
async def list_tokens(service: ServiceDep, who: Viewer) -> list[TokenOut]:
    """The caller's own tokens (an admin sees every token)."""
    owner = None if who.role.allows(Role.ADMIN) else who.user
    if owner is None and not who.role.allows(Role.ADMIN):
        return []
    return [_token_out(t) for t in service.accounts.list_tokens(owner)]


@router.post("/tokens", response_model=NewTokenOut, status_code=201, summary="Create a token")
async def create_token(body: NewTokenIn, service: ServiceDep, who: Viewer) -> NewTokenOut:
    """Create an API token for the caller, with a role no higher than the caller's."""
    if who.via != "session" or who.user is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "log in as a user to create tokens")
    try:
        info, secret = service.accounts.create_token(body.name, body.role, who.user)
    except AccountError as exc:
        raise _refusal(exc) from None
    return NewTokenOut(**_token_out(info).model_dump(), secret=secret)


@router.delete("/tokens/{token_id}", status_code=204, summary="Revoke a token")
async def revoke_token(token_id: str, service: ServiceDep, who: Viewer) -> None:
    """Revoke one of the caller's tokens (an admin may revoke any)."""
    owner = None if who.role.allows(Role.ADMIN) else who.user
    mine = (
        {t.id for t in service.accounts.list_tokens(owner)}
        if owner or who.role.allows(Role.ADMIN)
        else set()
    )
    if token_id not in mine:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no token {token_id!r} of yours")
    service.accounts.revoke_token(token_id)
