"""Who loads a build's primary-key ranges: this process, worker processes, or the site's Celery workers.

Internal: imports pipeline/ and below; the operations above pick one by ``REINDEX['EXECUTOR']``.
"""
