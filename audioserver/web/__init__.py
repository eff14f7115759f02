"""The HTTP application: factory, routes, handlers, middlewares, pages."""
