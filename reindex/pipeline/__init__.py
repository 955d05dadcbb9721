"""Rows to documents to the server, counted: the batch path every operation loads through, and the changed rows.

Internal: imports server/, definitions/, database/ and below.
"""
