"""Illustrated documents: the policy of the document graph (planning, sheet, consistency, rendering)."""
