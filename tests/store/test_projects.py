import pytest

from labelloop.errors import AlreadyExistsError, InvalidInputError, NotFoundError
from labelloop.store import reading, writing
from labelloop.store.projects import (
    add_tags,
    create_project,
    get_project,
    parse_tag_list,
    update_settings,
)


def test_create_and_read_back_keeps_tag_order(engine):
    with writing(engine) as conn:
        create_project(conn, name="reddit", labels=["Personal Stories", "Advocacy", "Other"], seed=3)
    with reading(engine) as conn:
        project = get_project(conn, name="reddit")
    assert project.tag_names == ["Personal Stories", "Advocacy", "Other"]
    assert project.seed == 3
    assert project.setting("audit_fraction") == 0.05
    assert project.tag_name(project.tag_id("Advocacy")) == "Advocacy"


def test_existing_project_is_an_error_and_changes_nothing(engine):
    with writing(engine) as conn:
        create_project(conn, name="p", labels=["A"])
    with pytest.raises(AlreadyExistsError, match="'p' exists already"):
        with writing(engine) as conn:
            create_project(conn, name="p", labels=["B", "C"])
    with reading(engine) as conn:
        assert get_project(conn, name="p").tag_names == ["A"]


def test_unknown_project_names_the_known_ones(engine):
    with writing(engine) as conn:
        create_project(conn, name="alpha", labels=["A"])
    with reading(engine) as conn, pytest.raises(NotFoundError, match="known projects: alpha"):
        get_project(conn, name="beta")


def test_tags_append_and_reject_duplicates(engine):
    with writing(engine) as conn:
        project = create_project(conn, name="p", labels=["A", "B"])
        add_tags(conn, project_id=project.id, names=["C"])
        with pytest.raises(AlreadyExistsError):
            add_tags(conn, project_id=project.id, names=["A"])
    with reading(engine) as conn:
        assert get_project(conn, name="p").tag_names == ["A", "B", "C"]


@pytest.mark.parametrize("text", ["", " , ", "A,A", "A," + "x" * 201, "A,\x07bell"])
def test_bad_tag_lists(text):
    with pytest.raises(InvalidInputError):
        parse_tag_list(text)


def test_unknown_tag_lists_the_known_ones(engine):
    with writing(engine) as conn:
        project = create_project(conn, name="p", labels=["A", "B"])
    with pytest.raises(InvalidInputError, match="unknown tag 'Z'.*A, B"):
        project.tag_id("Z")


def test_settings_are_validated_and_merged(engine):
    with writing(engine) as conn:
        project = create_project(conn, name="p", labels=["A"], settings={"overlap_fraction": 0.3})
        merged = update_settings(conn, project_id=project.id, values={"audit_fraction": 0.1})
        assert merged == {"overlap_fraction": 0.3, "audit_fraction": 0.1}
        with pytest.raises(InvalidInputError, match="between 0 and 1"):
            update_settings(conn, project_id=project.id, values={"audit_fraction": 2})
        with pytest.raises(InvalidInputError, match="unknown project settings: colour"):
            update_settings(conn, project_id=project.id, values={"colour": "red"})


@pytest.mark.parametrize("name", ["", " padded", "a/b", "x" * 201, "tab\there"])
def test_bad_project_names(engine, name):
    with writing(engine) as conn, pytest.raises(InvalidInputError):
        create_project(conn, name=name, labels=["A"])


def test_show_item_ids_is_off_by_default_and_a_boolean(engine):
    with writing(engine) as conn:
        project = create_project(conn, name="p", labels=["A"])
        assert project.setting("show_item_ids") is False
        update_settings(conn, project_id=project.id, values={"show_item_ids": True})
        with pytest.raises(InvalidInputError, match="show_item_ids must be true or false, got 'yes'"):
            update_settings(conn, project_id=project.id, values={"show_item_ids": "yes"})
    with reading(engine) as conn:
        assert get_project(conn, name="p").setting("show_item_ids") is True
