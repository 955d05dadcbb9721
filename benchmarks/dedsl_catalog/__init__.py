"""The catalog's products as a django-elasticsearch-dsl Document: the peer in the benchmark."""
