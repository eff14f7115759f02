"""Every route, named: templates and redirects build URLs from these names."""

from aiohttp import web

from . import uploads, views
from .typedefs import config_key


def setup_routes(app: web.Application) -> None:
    app.add_routes([
        web.get("/", views.index, name="index"),
        web.get("/upload", views.upload_form, name="upload"),
        web.post("/upload", views.upload, name="upload", expect_handler=uploads.expect_handler),
        web.put("/upload", views.upload, name="upload", expect_handler=uploads.expect_handler),
        web.get("/download", views.download, name="download"),
        web.get("/list", views.list_audio, name="list"),
        web.get("/info", views.info, name="info"),
        web.get("/waveform", views.waveform_peaks, name="waveform"),
        web.get("/delete", views.delete_form, name="delete"),
        web.post("/delete", views.delete, name="delete"),
        web.delete("/delete", views.delete, name="delete"),
        web.static("/static", app[config_key].static_dir, name="static"),
    ])
