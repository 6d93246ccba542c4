"""A package whose name starts with a digit: importlib imports it, so 0.27's supervisor runs its workers."""
