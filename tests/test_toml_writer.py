"""The TOML writer used for resolved recipes round-trips through tomllib."""

from __future__ import annotations

import datetime
import math
import tomllib

from hypothesis import given, settings
from hypothesis import strategies as st

from hashkit.recipe.toml_writer import dumps_toml

keys = st.text(alphabet="abcxyz_-.0 ", min_size=1, max_size=6)
offsets = st.sampled_from([None, datetime.timezone.utc, datetime.timezone(datetime.timedelta(hours=-7, minutes=-30))])
scalars = st.one_of(
    st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=False, width=64), st.text(max_size=8),
    # every TOML date/time kind: offset and local date-times, local dates, local times (tomllib keeps microseconds)
    st.builds(lambda d, tz: d.replace(tzinfo=tz), st.datetimes(min_value=datetime.datetime(1, 1, 1)), offsets),
    st.dates(), st.times(),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(scalars, max_size=3), st.dictionaries(keys, inner, max_size=3)),
    max_leaves=8,
)
documents = st.dictionaries(
    keys,
    st.one_of(values, st.lists(st.dictionaries(keys, scalars, min_size=1, max_size=3), min_size=1, max_size=2)),
    max_size=5,
)


@settings(max_examples=150, deadline=None)
@given(documents)
def test_round_trip(doc):
    assert tomllib.loads(dumps_toml(doc)) == doc


def test_special_floats():
    back = tomllib.loads(dumps_toml({"a": float("inf"), "b": float("-inf"), "c": float("nan")}))
    assert back["a"] == math.inf and back["b"] == -math.inf and math.isnan(back["c"])
