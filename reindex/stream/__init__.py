"""Following PostgreSQL's write-ahead log (logical decoding): every committed change, nothing added to a write."""
