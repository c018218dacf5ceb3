"""The notebook API on multi-label projects (both databases): sets in, lists out."""

from __future__ import annotations

import pandas as pd

import labelloop


def test_create_multi_label_add_items_and_labels_as_lists(db_url, tmp_path):
    p = labelloop.create_project("posts", labels=["story", "advocacy", "question"], db=db_url, multi_label=True)
    try:
        assert p.info().multi_label and p.info().tag_bits == {"story": 0, "advocacy": 1, "question": 2}
        frame = pd.DataFrame({"id": ["a", "b", "c", "d", "e"], "text": ["one", "two", "three", "four", "five"],
                              "tags": ["story|advocacy", "__none__", None, ["question"], []]})
        result = p.add_items(frame, id_column="id", text_columns="text", label_column="tags")
        assert (result.imported, result.labels) == (5, 4)
        labels = p.labels()
        assert list(labels.columns) == ["id", "labels", "label_source"]
        assert labels.values.tolist() == [["a", ["story", "advocacy"], "human"], ["b", [], "human"],
                                          ["d", ["question"], "human"], ["e", [], "human"]]
        status = p.status()
        assert (status["labelled"], status["labels"]) == (4, {"story": 1, "advocacy": 1, "question": 1})
        assert p.to_dataframe()["labels"].tolist()[2] is None
        out = p.export(tmp_path / "posts.csv", label_separator=";")
        assert out.rows == 5 and "story;advocacy" in (tmp_path / "posts.csv").read_text()
    finally:
        p.close()
