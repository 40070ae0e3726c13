"""The web application people use at the hub (一张图): static files served at ``/app/``."""

from hub.web.pages import APP_PATH, STATIC, mount_web

__all__ = ["APP_PATH", "STATIC", "mount_web"]
