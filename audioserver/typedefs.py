"""Every key under which the application keeps state."""

from aiohttp import web

from .library import Library
from .settings import Config

config_key = web.AppKey("config", Config)
library_key = web.AppKey("library", Library)
