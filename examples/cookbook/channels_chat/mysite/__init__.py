"""The Django project of Channels' tutorial chat (``django-admin startproject mysite``)."""

__all__: list[str] = []
