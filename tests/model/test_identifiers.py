"""``model.identifiers.postgresql_name``: names within PostgreSQL's 63 bytes, apart."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from auditkeeper.model.identifiers import POSTGRESQL_NAME_LIMIT, postgresql_name

SUFFIXES = st.sampled_from(["_audit_capture", "_audit_flushed", "_audit_no_truncate", "_x"])


def test_a_name_that_fits_is_kept() -> None:
    assert postgresql_name("orders", "_audit_capture") == "orders_audit_capture"
    fits = "t" * (POSTGRESQL_NAME_LIMIT - len("_audit_capture"))
    assert postgresql_name(fits, "_audit_capture") == fits + "_audit_capture"


@given(base=st.text(min_size=1, max_size=120), suffix=SUFFIXES)
def test_every_name_fits_keeps_its_suffix_and_is_the_same_each_time(base: str, suffix: str):
    name = postgresql_name(base, suffix)
    assert len(name.encode()) <= POSTGRESQL_NAME_LIMIT
    assert name.endswith(suffix)
    assert name == postgresql_name(base, suffix)
    name.encode().decode()  # no character cut in half


@given(
    prefix=st.text(min_size=60, max_size=80),
    ends=st.lists(st.text(min_size=1, max_size=5), min_size=2, max_size=2, unique=True),
    suffix=SUFFIXES,
)
def test_long_names_that_share_their_start_stay_apart(prefix: str, ends: list[str], suffix: str):
    first, second = (postgresql_name(prefix + end, suffix) for end in ends)
    assert first != second
