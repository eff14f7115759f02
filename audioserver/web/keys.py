"""Every key under which the application and its requests keep state."""

from aiohttp import web

from ..accounts import ApiToken, Session, User
from ..auth import Auth
from ..config import Config
from ..library import Library
from ..ratelimit import Decision, RateLimiter
from .answers import Answers
from .draining import InFlight
from .measures import Metrics

config_key = web.AppKey("config", Config)
library_key = web.AppKey("library", Library)
auth_key = web.AppKey("auth", Auth)
ratelimiter_key = web.AppKey("ratelimiter", RateLimiter)
metrics_key = web.AppKey("metrics", Metrics)
# The requests in flight, set by the serving code that drains them on
# SIGTERM (cli/serve.py); absent in an app that tests drive in-process.
inflight_key = web.AppKey("inflight", InFlight)
answers_key = web.AppKey("answers", Answers)
# Who made the request: set by the auth middleware on every request, None
# for nobody (open mode, or not signed in).
user_key = web.RequestKey("user", User)
# The browser session that signed the request in, when a cookie did.
session_key = web.RequestKey("session", Session)
# The API token that signed the request in, when a Bearer header did.
token_key = web.RequestKey("api_token", ApiToken)
# A multipart upload signed in by a cookie: the CSRF token its first field must carry.
csrf_pending_key = web.RequestKey("csrf_pending", str)
# What the request spent of its rate limit, for the RateLimit-* headers.
ratelimit_decision_key = web.RequestKey("ratelimit_decision", Decision)
