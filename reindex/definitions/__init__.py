"""What one alias holds: the index definition, its related rows, its mappings, and rows turned into documents.

Internal, apart from what ``reindex`` exports (``IndexDefinition``, ``Related``). Imports database/ and below.
"""
