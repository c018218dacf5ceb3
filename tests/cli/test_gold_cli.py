"""`labelloop configure --gold-fraction / --gold-min-accuracy` (both databases)."""

from __future__ import annotations

from click.testing import CliRunner

from labelloop.cli import main


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_gold_settings_are_checked_and_changed(db_url):
    assert run("init", "p", "--labels", "A,B", "--db", db_url).exit_code == 0
    done = run("configure", "p", "--gold-fraction", "0.1", "--gold-min-accuracy", "0.75", "--db", db_url)
    assert done.exit_code == 0, done.output
    assert done.stdout.splitlines() == ["gold_fraction: 0.0 -> 0.1", "gold_min_accuracy: 0.8 -> 0.75"]
    for option, value, words in (("--gold-fraction", "0.6", "gold_fraction must be between 0 and 0.5, got 0.6"),
                                 ("--gold-fraction", "-0.1", "gold_fraction must be between 0 and 0.5"),
                                 ("--gold-min-accuracy", "1.5", "gold_min_accuracy must be between 0 and 1")):
        refused = run("configure", "p", option, value, "--db", db_url)
        assert refused.exit_code == 2 and words in refused.stderr and len(refused.stderr.splitlines()) == 1
    shown = run("configure", "p", "--db", db_url).stdout.splitlines()
    assert "gold_fraction: 0.1" in shown and "gold_min_accuracy: 0.75" in shown
