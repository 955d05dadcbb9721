"""Talking to the search server: the client, retries, bulk bodies, indexes and aliases, locks, markers, drift.

Internal: imports definitions/, database/ and below.
"""
