import pytest

from labelloop.store.labels import final_label


@pytest.mark.parametrize(
    ("tags", "adjudicated", "expected"),
    [
        ([], None, (None, None)),
        ([7], None, (7, "human")),
        ([7, 7, 8], None, (7, "human")),
        ([7, 8], None, (None, "conflict")),
        ([7, 8, 8, 7], None, (None, "conflict")),
        ([7, 8], 8, (8, "human")),
        ([7, 7, 7], 8, (8, "human")),
        ([], 9, (9, "human")),
    ],
)
def test_final_label_rule(tags, adjudicated, expected):
    assert final_label(tags, adjudicated) == expected
