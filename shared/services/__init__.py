"""Business logic: one function per route or trigger, with its dependencies passed in."""
