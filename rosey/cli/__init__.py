"""Operator tools: replay, ask."""
