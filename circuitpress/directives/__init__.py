"""Built-in directives and roles, one module per concern.

Each module is registered exactly like a third-party plugin: pyproject.toml names its
`register(registry)` in the entry-point group `circuitpress.directives`. Directives may import
the extension API, render helpers and the request types, but never torch: results arrive as
plain data.
"""
