"""The conformance suite is honest: run against deliberately broken backends, the right tests fail."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

BROKEN = textwrap.dedent(
    """
    import bisect
    import pytest
    from trax.interfaces import Delete, Update
    from trax.plugins.memory_storage import MemoryStorage
    from trax.testing.storage import StorageConformance

    class IgnoresCompareAndSet(MemoryStorage):
        async def apply(self, writes):
            await super().apply([Update(w.entity) if isinstance(w, Update) else w for w in writes])

    class NotAtomic(MemoryStorage):
        async def apply(self, writes):
            for w in writes:
                await super().apply([w])

    class LeaksOtherAccounts(MemoryStorage):
        async def list(self, kind, account_id, **kw):
            mine = await super().list(kind, account_id, **kw)
            other = "acct_conformance_b" if account_id != "acct_conformance_b" else "acct_conformance_a"
            return mine + await super().list(kind, other, **kw)

    class RepeatsTheCursorRow(MemoryStorage):
        async def list(self, kind, account_id, *, parent_id=None, after=None, limit=50):
            start = after[:-1] if after else None  # sorts just before ``after``: the last row comes again
            return await super().list(kind, account_id, parent_id=parent_id, after=start, limit=limit)

    class KeepsUniquesOnDelete(MemoryStorage):
        async def apply(self, writes):
            held = dict(self._unique)
            await super().apply(writes)
            if any(isinstance(w, Delete) for w in writes):
                for k, v in held.items():
                    self._unique.setdefault(k, v)

    class IgnoresParent(MemoryStorage):
        async def list(self, kind, account_id, *, parent_id=None, after=None, limit=50):
            return await super().list(kind, account_id, after=after, limit=limit)

    for cls in (IgnoresCompareAndSet, NotAtomic, LeaksOtherAccounts, RepeatsTheCursorRow,
                KeepsUniquesOnDelete, IgnoresParent):
        def make_storage(self, cls=cls):
            store = cls()
            return lambda: store
        globals()["Test" + cls.__name__] = type(
            "Test" + cls.__name__,
            (StorageConformance,),
            {"durable": False, "make_storage": pytest.fixture(make_storage)},
        )
    """
)

# each broken backend, and a test that must catch it
EXPECTED = {
    "IgnoresCompareAndSet": "test_concurrent_compare_and_set_admits_exactly_one",
    "NotAtomic": "test_a_batch_failing_on_a_unique_value_changes_nothing",
    "LeaksOtherAccounts": "test_lists_of_two_accounts_do_not_mix",
    "RepeatsTheCursorRow": "test_keyset_walk_under_concurrent_inserts_and_deletes",
    "KeepsUniquesOnDelete": "test_delete_frees_unique_values",
    "IgnoresParent": "test_list_filters_by_parent_and_pages_within_it",
}


@pytest.mark.slow
def test_each_broken_backend_fails_the_suite(tmp_path: Path) -> None:
    (tmp_path / "test_broken.py").write_text(BROKEN)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rf", str(tmp_path / "test_broken.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )
    failed = set(re.findall(r"^FAILED \S+::Test(\w+)::(\w+)", proc.stdout, re.M))
    for backend, test in EXPECTED.items():
        assert (backend, test) in failed, f"{backend} was not caught by {test}\n{proc.stdout[-3000:]}"
    # every broken backend fails somewhere, and nothing errors out of the suite itself
    assert "error" not in proc.stdout.splitlines()[-1]
