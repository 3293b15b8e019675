"""Test helpers trax ships for plugin authors.

* :mod:`trax.testing.storage` — the storage conformance suite (subclass
  ``StorageConformance`` and give it a ``make_storage`` fixture).
* :mod:`trax.testing.servers` — throwaway PostgreSQL and Redis servers on free
  loopback ports.

Nothing in trax imports this package; it needs pytest (the ``test`` extra).
"""
