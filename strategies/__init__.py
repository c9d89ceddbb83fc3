"""Candidates: one module per strategy behind one contract (base.py), looked up lazily (registry.py)."""
