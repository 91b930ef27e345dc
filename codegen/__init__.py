"""Lowering of Graph operators to kernel calls, and rendering of C with Jinja2."""
