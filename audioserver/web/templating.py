"""Jinja set-up for the pages, and the filters that format metadata for people."""

from datetime import datetime

import aiohttp_jinja2
import jinja2
from aiohttp import web

from .keys import auth_key, session_key, user_key

SIZE_UNITS = ("bytes", "KiB", "MiB", "GiB", "TiB")
# The repository's top-level templates/, which the build maps into the
# package (setup.cfg): found by import, never by a path from the checkout.
TEMPLATES_PACKAGE = "audioserver.templates"


def setup_templates(app: web.Application) -> None:
    aiohttp_jinja2.setup(
        app,
        # jinja2's loader for package resources: a wheel, an editable install.
        loader=jinja2.PackageLoader(TEMPLATES_PACKAGE, ""),
        autoescape=True,  # names like "<img onerror=…>.wav" are shown, never run
        filters={"duration": format_duration, "filesize": format_size, "when": format_when},
    )


def render(request: web.Request, template: str, context: dict, status: int = 200) -> web.Response:
    """A page. Every page also gets the request, who is signed in (for the
    header) and the CSRF token its forms carry."""
    session = request.get(session_key)
    shared = {"request": request, "accounts": not request.app[auth_key].open,
              "user": request.get(user_key),
              "csrf_token": session.csrf_token if session is not None else ""}
    return aiohttp_jinja2.render_template(template, request, {**shared, **context},
                                          status=status)


def format_duration(seconds: float) -> str:
    """m:ss below an hour, h:mm:ss above."""
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes}:{secs:02d}"


def format_size(size: int) -> str:
    """Bytes in powers of 1024, the way the upload limit is given."""
    value, unit = float(size), 0
    while value >= 1024 and unit < len(SIZE_UNITS) - 1:
        value /= 1024
        unit += 1
    return f"{size} bytes" if unit == 0 else f"{value:.1f} {SIZE_UNITS[unit]}"


def format_when(timestamp: str) -> str:
    """An RFC 3339 UTC time to the minute, as people read it; the page keeps
    the exact value in <time datetime>."""
    try:
        moment = datetime.fromisoformat(timestamp)
    except ValueError:
        return timestamp
    return moment.strftime("%Y-%m-%d %H:%M UTC")
