"""Rate limits on the wire: which budget a request spends, whose it is,
the 429, and the RateLimit-* headers on every answer (ratelimit/ keeps
the buckets)."""

from aiohttp import web

from ..errors import TooManyRequests
from .bodies import SAFE_METHODS, is_upload
from .clients import client_address
from .health import HEALTH_PATHS
from .keys import metrics_key, ratelimit_decision_key, ratelimiter_key, user_key

def budget_of(request: web.Request) -> str | None:
    """Which budget a request spends; None for the stylesheet and scripts,
    which every page loads and which cost next to nothing, and for the
    health checks, which a load balancer must always get an answer to."""
    if request.path.startswith("/static/") or request.path in HEALTH_PATHS:
        return None
    if request.method in SAFE_METHODS:  # what changes nothing is a read
        return "reads"
    return "uploads" if is_upload(request) else "writes"


async def charge(request: web.Request) -> None:
    """Spend a token of the request's budget: the signed-in account's, or the
    client address's. TooManyRequests when the bucket is empty."""
    # None until a take decides: set here, so that the headers' lookup of
    # every answer finds it instead of raising and catching a KeyError.
    request[ratelimit_decision_key] = None
    limiter = request.app[ratelimiter_key]
    budget = budget_of(request)
    rate = limiter.rates.get(budget)
    if rate is None:  # free, or that budget is off
        return
    user = request.get(user_key)
    client = f"user:{user.name}" if user is not None else f"address:{client_address(request)}"
    decision = await limiter.buckets.take(f"{budget}:{client}", rate)
    if decision is None:  # the buckets cannot be reached: let it through
        return
    request[ratelimit_decision_key] = decision
    if not decision.allowed:
        request.app[metrics_key].refusals.labels(budget).inc()
        raise TooManyRequests(
            f"too many {budget} from {'your account' if user else 'your address'}: "
            f"{rate.count} per {rate.period_name} at most; try again in "
            f"{decision.retry_after} s", retry_after=decision.retry_after)


def add_ratelimit_headers(request: web.Request, response: web.StreamResponse) -> None:
    """As an answer is sent (web/app.py): it says what is left of its budget."""
    decision = request.get(ratelimit_decision_key)
    if decision is not None:
        response.headers.update(decision.headers())
