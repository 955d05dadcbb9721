"""The demo's product catalog: the rows that ``reindex`` turns into documents."""
