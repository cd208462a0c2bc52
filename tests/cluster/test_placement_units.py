"""Placement of new rooms (pure): the least-loaded live node that is not draining."""

from __future__ import annotations

import pytest

from shoal.cluster.placement import CPU_FLOOR, CPU_WEIGHT, NodeInfo, choose_node


def node(node_id: str, **load: float) -> NodeInfo:
    return NodeInfo(node_id, f"http://{node_id}", f"http://{node_id}.internal", **load)  # type: ignore[arg-type]


def test_the_least_loaded_node_takes_the_room() -> None:
    nodes = [node("a", rooms=3, streams=10), node("b", rooms=5, streams=2), node("c", rooms=1, streams=20)]
    chosen = choose_node(nodes)
    assert chosen is not None and chosen.id == "b"  # 7 points against 13 and 21


def test_cpu_beyond_half_a_core_counts_as_streams_worth_of_load() -> None:
    busy = node("a", streams=10, cpu=0.9)  # 10 + 40
    calm = node("b", streams=40, cpu=0.45)  # 40 + 0
    chosen = choose_node([busy, calm])
    assert chosen is not None and chosen.id == "b"
    assert busy.load == pytest.approx(10 + CPU_WEIGHT * (0.9 - CPU_FLOOR))
    # Below the floor CPU is noise: streams decide.
    assert choose_node([node("a", streams=5, cpu=0.4), node("b", streams=6, cpu=0.0)]) == node("a", streams=5, cpu=0.4)


def test_draining_nodes_take_no_rooms_and_none_is_left_when_all_drain() -> None:
    draining = NodeInfo("a", "http://a", "http://a", draining=True)
    assert choose_node([draining, node("b", rooms=100)]) == node("b", rooms=100)
    assert choose_node([draining]) is None
    assert choose_node([]) is None


def test_equal_load_is_broken_by_node_id_and_room_counts_spread_a_burst() -> None:
    nodes = {name: node(name) for name in "cab"}
    placed = []
    for _ in range(9):
        chosen = choose_node(nodes.values())
        assert chosen is not None
        placed.append(chosen.id)
        nodes[chosen.id] = node(chosen.id, rooms=nodes[chosen.id].rooms + 1)
    assert placed == ["a", "b", "c"] * 3


def test_fields_round_trip_through_the_registry_hash() -> None:
    original = NodeInfo("n1", "https://pub", "http://int:5002", rooms=4, streams=9, cpu=0.25, draining=True)
    assert NodeInfo.from_fields(original.to_fields()) == original
