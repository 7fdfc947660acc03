"""Serve: the library over HTTP (a JSON API with an OpenAPI spec) and a web page.

>>> from melodex.serve import ServeConfig, create_app   # doctest: +SKIP
>>> app = create_app(ServeConfig(db="my-library"))        # doctest: +SKIP
"""

from __future__ import annotations

from melodex.serve.app import ServeConfig, create_app

__all__ = ["ServeConfig", "create_app"]
