"""Capture layer: declarations, the actor context, and the flush hooks."""
