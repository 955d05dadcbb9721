"""Reading rows from the site's database: keyset batches on the DB-API cursor, the ORM's converters a column at a time.

Internal: imports only errors and config. Users reach it through ``reindex.rebuild()`` and friends.
"""
