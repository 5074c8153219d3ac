"""Text stays text (issue 17.4): no raw control, bidi, zero-width or tag character from a results
root or a query reaches the terminal, on any path (`trainer sql` tables and errors, `ls --where`
errors, `trainer compact`, the lock holder's host)."""

from __future__ import annotations

import json
import re

import pyarrow as pa
import pytest

from ibstore import index
from ibstore.lock import LOCK_FILE, RunLock
from ibstore.text import terminal_text
from trainer import cli
from trainer.store import write_table

# ESC ] 0 ; title BEL retitles the terminal, ESC [ 2 J clears it.
RETITLE_AND_CLEAR = "\x1b]0;pwned\x07\x1b[2J"
HOSTILE = RETITLE_AND_CLEAR + "\r\nfake line\u202egnp.exe\u2066\u200b" + "".join(map(chr, range(0xE0041, 0xE0045)))
# Anything a terminal could take as other than a printable character.
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\U000e0000-\U000e007f]")


def assert_clean(text: str) -> None:
    assert not RAW.findall(text), RAW.findall(text)


def test_terminal_text_escapes_every_unsafe_character_and_nothing_else():
    escaped = terminal_text(HOSTILE)
    assert_clean(escaped) and "\n" not in escaped and "\r" not in escaped
    assert escaped.startswith("\\x1b]0;pwned\\x07\\x1b[2J\\r\\nfake line\\u202egnp.exe\\u2066\\u200b\\U000e0041")
    assert terminal_text("plain é 名前 ✓ 'quoted' \\ path/x") == "plain é 名前 ✓ 'quoted' \\ path/x"
    assert terminal_text(escaped) == escaped   # escaping twice changes nothing more


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    index.forget()
    results = tmp_path / "results"
    (results / "runs").mkdir(parents=True)
    yield results
    index.forget()


@pytest.mark.slow
def test_sql_table_values_and_names_are_escaped(root, capsys):
    literal = HOSTILE.replace("'", "''")
    tags = "".join(map(chr, range(0xE0041, 0xE0045)))
    assert cli.main(["sql", "--results", str(root),
                     f"SELECT 'a{tags}b' AS tags, '{literal}' AS \"{RETITLE_AND_CLEAR}\""]) == 0
    out, err = capsys.readouterr()
    assert_clean(out + err)
    assert "\\U000e0041" in out and "\\x1b]0;pwned" in out


@pytest.mark.slow
def test_sql_errors_quoting_data_are_escaped(root, capsys):
    literal = HOSTILE.replace("'", "''")
    assert cli.main(["sql", "--results", str(root), f"SELECT error('{literal}')"]) == 2
    out, err = capsys.readouterr()
    assert_clean(out + err) and err.count("\n") == 1 and "\\x1b]0;pwned" in err


@pytest.mark.slow
def test_ls_where_errors_are_escaped(root, capsys):
    assert cli.main(["ls", "--results", str(root), "--where", f"\"{RETITLE_AND_CLEAR}\" > 0"]) == 2
    out, err = capsys.readouterr()
    assert_clean(out + err) and err.startswith("error: --where:") and err.count("\n") == 1


def part_file_run(root, name: str):
    run_dir = root / "runs" / name
    run_dir.mkdir()
    write_table(run_dir / "metrics.part-000001.parquet",
                pa.table({"run_id": [name], "epoch": pa.array([0], pa.int32()), "split": ["train"],
                          "loss": [1.0], "accuracy": [0.5]}))
    return run_dir


def test_compact_prints_run_folder_names_escaped(root, capsys):
    part_file_run(root, "run" + RETITLE_AND_CLEAR)
    assert cli.main(["compact", "--results", str(root)]) == 0
    out, err = capsys.readouterr()
    assert_clean(out + err) and "run\\x1b]0;pwned\\x07\\x1b[2J: merged 1 part file(s)" in out


def test_the_lock_holders_host_is_escaped(root, capsys):
    run_dir = part_file_run(root, "held")
    with RunLock.acquire(run_dir):
        holder = json.loads((run_dir / LOCK_FILE).read_text())
        (run_dir / LOCK_FILE).write_text(json.dumps({**holder, "host": HOSTILE, "since": RETITLE_AND_CLEAR}))
        assert cli.main(["compact", "--results", str(root)]) == 0
    out, err = capsys.readouterr()
    assert_clean(out + err)
    assert f"held: held by pid {holder['pid']} on host \\x1b]0;pwned" in out and "left alone" in out
