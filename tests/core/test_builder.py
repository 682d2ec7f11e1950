from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paywire import BuilderComposite, PluginError, Subject

keys = st.text(alphabet="abcdefgh", min_size=1, max_size=3)
leaves = st.one_of(st.integers(), st.text(max_size=5), st.booleans())
# Drawing nested trees is slow by nature, and slower on a loaded machine: the health check that
# times data generation, and the per-example deadline, would fail these properties by the clock
# alone (as they did under `python3 -m nox` without CI set), so neither applies to them.
untimed = settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
trees = st.recursive(st.dictionaries(keys, leaves, max_size=4), lambda inner: st.dictionaries(keys, inner, max_size=4), max_leaves=12)


def leaf_paths(tree: dict[str, Any], prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    paths: dict[tuple[str, ...], Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            paths.update(leaf_paths(value, (*prefix, key)))
        else:
            paths[(*prefix, key)] = value
    return paths


def node_paths(tree: dict[str, Any], prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    """Paths holding a mapping (empty ones included): a leaf there conflicts."""
    nodes: set[tuple[str, ...]] = set()
    for key, value in tree.items():
        if isinstance(value, dict):
            nodes |= {(*prefix, key)} | node_paths(value, (*prefix, key))
    return nodes


@untimed
@given(trees, trees)
def test_merge_keeps_every_leaf_or_names_both_builders(a: dict[str, Any], b: dict[str, Any]) -> None:
    def first(subject: Subject) -> dict[str, Any]:
        return a

    def second(subject: Subject) -> dict[str, Any]:
        return b

    pa, pb = leaf_paths(a), leaf_paths(b)
    clash = (set(pa) & set(pb)) or (set(pa) & node_paths(b)) or (set(pb) & node_paths(a))
    if clash:
        with pytest.raises(PluginError) as caught:
            BuilderComposite([first, second])(Subject())
        assert "first" in str(caught.value) and "second" in str(caught.value)
    else:
        merged = BuilderComposite([first, second])(Subject())
        assert leaf_paths(merged) == {**pa, **pb}


@untimed
@given(trees)
def test_merge_does_not_mutate_the_parts(tree: dict[str, Any]) -> None:
    snapshot = repr(tree)
    BuilderComposite([lambda s: tree, lambda s: {"zz_other": 1}])(Subject())
    assert repr(tree) == snapshot


def test_nested_parts_merge_deeply() -> None:
    composite = BuilderComposite([lambda s: {"metadata": {"a": "1"}, "amount": 5}, lambda s: {"metadata": {"b": "2"}}])
    assert composite(Subject()) == {"metadata": {"a": "1", "b": "2"}, "amount": 5}


def test_conflicting_leaf_names_the_field() -> None:
    def amount_a(subject: Subject) -> dict[str, Any]:
        return {"payment": {"amount": 1}}

    def amount_b(subject: Subject) -> dict[str, Any]:
        return {"payment": {"amount": 2}}

    with pytest.raises(PluginError, match=r"amount_a.*amount_b.*payment\.amount"):
        BuilderComposite([amount_a, amount_b])(Subject())
