"""The relay's HTTP side: one module of routes per area, typed app keys, OpenAPI."""
