"""Which objects a contact sheet shows."""

from iebench.contact_sheet import spread_over_classes


def test_rows_are_spread_round_robin_over_the_classes():
    items = [("chair", 1), ("chair", 2), ("chair", 3), ("lamp", 1), ("mug", 1), ("mug", 2)]
    assert spread_over_classes(items, lambda item: item[0], 4) == [("chair", 1), ("lamp", 1), ("mug", 1), ("chair", 2)]
    assert spread_over_classes(items, lambda item: item[0], 100) == sorted(items, key=lambda item: (item[1], item[0]))
    assert spread_over_classes([], lambda item: item[0], 3) == []
