"""Business logic: one function per route or trigger, with its dependencies passed in."""

__all__: list[str] = []
