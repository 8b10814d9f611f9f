"""Plugins that ship with callback: they register through the same hooks as any other."""
