"""`labelloop orchestrate` logs its rounds as JSON lines with LABELLOOP_LOG_FORMAT=json."""

from __future__ import annotations

import json

from click.testing import CliRunner

from labelloop.cli import main


def test_a_round_is_one_json_line_with_project_version_labels_and_timings(bbc, db_url):
    env = {"LABELLOOP_MODELS_DIR": str(bbc.settings.models_dir), "LABELLOOP_LOG_FORMAT": "json"}
    result = CliRunner().invoke(main, ["orchestrate", "bbc", "--once", "--db", db_url], env=env,
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    objects = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    rounds = [o for o in objects if o.get("version") is not None]
    assert len(rounds) == 1, objects
    line = rounds[0]
    assert line["logger"] == "labelloop.orchestrator" and line["level"] == "INFO"
    assert (line["project"], line["version"], line["status"], line["state"]) == ("bbc", 1, "complete", "model")
    assert line["labels"] == 40 and line["scored"] == len(bbc.truth) - 40
    assert {"snapshot", "features", "fit", "write", "switch", "total"} <= set(line["timings"])
    assert 0 <= line["macro_f1"] <= 1
    assert "version 1 serving" in line["message"]
    starting = [o for o in objects if o.get("reason")]
    assert starting and starting[0]["project"] == "bbc"
    # the command's own summary on stdout stays plain text
    assert "version 1: model, 40 labels" in result.output
