"""The application factory."""

from aiohttp import web

from ..auth import Auth
from ..config import Config
from ..library import open_library
from ..ratelimit import RateLimiter, open_buckets
from .answers import Answers
from .caching import add_cache_headers
from .gate import gate_middleware
from .keys import answers_key, auth_key, config_key, library_key, metrics_key, ratelimiter_key
from .measures import Metrics
from .metrics import count_download, metrics_middleware
from .middlewares import error_middleware
from .ratelimit import add_ratelimit_headers
from .routes import setup_routes
from .securityheaders import add_security_headers
from .templating import setup_templates
from .wire import MAX_HEADERS, MAX_LINE, answer_unparsable_requests

# aiohttp buffers up to twice this per connection before it stops reading:
# 64 KiB (its default) makes a 1 GB upload sixteen thousand trips through
# the reader; much more and 200 concurrent uploads cost too much memory.
READ_BUFSIZE = 128 * 1024  # 256 KiB: 10-15% more peak memory, no faster (uploads.py)


async def library_ctx(app: web.Application):
    config = app[config_key]
    async with open_library(config, reconcile_storage=config.reconcile) as library:
        app[library_key] = library
        library.on_probe = app[metrics_key].probe.observe
        yield


async def auth_ctx(app: web.Application):
    auth = Auth(app[library_key].accounts, app[config_key])
    if not auth.open:
        await auth.remove_expired_sessions()
    app[auth_key] = auth
    yield


async def ratelimit_ctx(app: web.Application):
    # After library_ctx, which makes the data directory.
    buckets = open_buckets(app[config_key],
                           on_error=lambda: app[metrics_key].backend_error("redis"))
    app[ratelimiter_key] = RateLimiter(buckets, app[config_key])
    yield
    await buckets.close()


async def finish_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: what every answer carries, whoever made it (a
    handler, a middleware, aiohttp itself). One hook, not one per concern:
    each costs an await on every answer."""
    add_security_headers(response)
    add_ratelimit_headers(request, response)
    add_cache_headers(request, response)
    count_download(request, response)


def create_app(config: Config) -> web.Application:
    app = web.Application(
        # Outermost first: every answer counted; errors become problems;
        # then what every request passes before its handler (gate.py).
        middlewares=[metrics_middleware, error_middleware, gate_middleware],
        handler_args={
            "read_bufsize": READ_BUFSIZE,
            # Idle connections, and headers that never finish: see bodies.py.
            "keepalive_timeout": config.header_timeout,
            # What is refused before any handler runs, and how: wire.py.
            "max_line_size": MAX_LINE,
            "max_field_size": MAX_LINE,
            "max_headers": MAX_HEADERS,
        },
    )
    answer_unparsable_requests()
    app[config_key] = config
    app[metrics_key] = Metrics()
    app[answers_key] = Answers()
    setup_templates(app)
    setup_routes(app)
    app.on_response_prepare.append(finish_headers)
    app.cleanup_ctx.append(library_ctx)
    app.cleanup_ctx.append(auth_ctx)
    app.cleanup_ctx.append(ratelimit_ctx)
    return app
