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
    import asyncio
    import bisect
    import pytest
    from trax.domain.errors import Conflict, NotFound
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

    class NoParentRule(MemoryStorage):
        def _check_parents(self, rows, current):
            return None

    class DeletesLeaveOrphans(MemoryStorage):
        def _check_parents(self, rows, current):
            super()._check_parents({k: r for k, r in rows.items() if r is not None}, current)

    class ChecksParentsOutsideTheBatch(MemoryStorage):
        # checks the rule, then yields before writing: the check-then-act race of a non-transactional backend

        async def apply(self, writes):
            for w in writes:
                e = getattr(w, "entity", None)
                if e is not None and e.parent_id is not None:
                    if not any(k[1:] == (e.account_id, e.parent_id) for k in self._rows):
                        raise NotFound("no parent")
                if isinstance(w, Delete):
                    if self._children.get((w.account_id, w.id)):
                        raise Conflict("children")
            await asyncio.sleep(0)
            self._check_parents = lambda rows, current: None
            await super().apply(writes)

    for cls in (IgnoresCompareAndSet, NotAtomic, LeaksOtherAccounts, RepeatsTheCursorRow,
                KeepsUniquesOnDelete, IgnoresParent, NoParentRule, DeletesLeaveOrphans,
                ChecksParentsOutsideTheBatch):
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
    "NoParentRule": "test_a_child_without_its_parent_is_refused",
    "DeletesLeaveOrphans": "test_deleting_a_parent_that_keeps_a_child_conflicts_and_changes_nothing",
    "ChecksParentsOutsideTheBatch": "test_racing_child_creation_against_parent_deletion_leaves_no_orphan",
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
