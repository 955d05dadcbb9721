"""The change queue: its entries in the site's database, the triggers that fill it, the drain that empties it.

Internal: the public functions are in ``reindex`` (``reindex.drain()``, ``reindex.enqueue()`` ...).
Imports operations/ and below.
"""
