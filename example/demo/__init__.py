"""A small Django site whose catalog shows what ``reindex`` does."""
