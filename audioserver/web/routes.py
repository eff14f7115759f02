"""Every route, named: templates and redirects build URLs from these names."""

from aiohttp import web

from . import accountviews, adminviews, health, metrics, uploads, views
from .keys import config_key


def setup_routes(app: web.Application) -> None:
    app.add_routes([
        web.get("/", views.index, name="index"),
        web.get("/upload", views.upload_form, name="upload"),
        web.post("/upload", views.upload, name="upload", expect_handler=uploads.expect_handler),
        web.put("/upload", views.upload, name="upload", expect_handler=uploads.expect_handler),
        web.get("/download", views.download, name="download"),
        web.get("/preview", views.preview, name="preview"),
        web.get("/cover", views.cover, name="cover"),
        web.get("/list", views.list_audio, name="list"),
        web.get("/info", views.info, name="info"),
        web.patch("/info", views.patch_info, name="info"),
        web.post("/info", views.edit_info, name="info"),
        web.get("/waveform", views.waveform_peaks, name="waveform"),
        web.get("/delete", views.delete_form, name="delete"),
        web.post("/delete", views.delete, name="delete"),
        web.delete("/delete", views.delete, name="delete"),
        web.post("/visibility", views.set_visibility, name="visibility"),
        web.get("/login", accountviews.login_form, name="login"),
        web.post("/login", accountviews.login, name="login"),
        web.post("/logout", accountviews.logout, name="logout"),
        web.get("/setup", accountviews.setup_form, name="setup"),
        web.post("/setup", accountviews.setup, name="setup"),
        web.get("/account", accountviews.account, name="account"),
        web.post("/account/password", accountviews.change_password, name="password"),
        web.get("/users", adminviews.users, name="users"),
        web.post("/users", adminviews.create_user, name="users"),
        web.delete("/users", adminviews.remove_user, name="users"),
        web.post("/users/remove", adminviews.remove_user, name="remove_user"),
        web.post("/users/password", adminviews.reset_password, name="user_password"),
        web.post("/tokens", accountviews.create_token, name="tokens"),
        web.delete("/tokens", accountviews.revoke_token, name="tokens"),
        web.post("/tokens/revoke", accountviews.revoke_token, name="revoke_token"),
        web.get("/openapi.json", views.openapi_document, name="openapi"),
        web.get("/healthz", health.healthz, name="healthz"),
        web.get("/readyz", health.readyz, name="readyz"),
        web.get("/metrics", metrics.metrics, name="metrics"),
        web.static("/static", app[config_key].static_dir, name="static"),
    ])
