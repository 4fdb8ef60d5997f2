"""Lua scripts of the store, loaded with importlib.resources."""
