"""Tuning Zhiku to one knowledge base: fusion weights from generated questions (``zhiku tune``)."""
