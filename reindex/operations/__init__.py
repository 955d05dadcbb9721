"""The runs an operator starts: rebuild and its catch-up, update, sweep, verify, migrate, plan, rollback, prune.

Internal: the public functions are in ``reindex`` (``reindex.rebuild()`` ...). Imports executors/ and below.
"""
