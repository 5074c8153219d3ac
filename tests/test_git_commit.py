"""ibstore.git_commit reads HEAD's commit from the checkout's files as `git rev-parse HEAD` says it:
a branch's loose ref, packed refs, a detached HEAD, a worktree, and no checkout at all."""

import subprocess

import pytest

from ibstore.git_commit import git_commit


def git(folder, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=folder, check=True,
                          capture_output=True, text=True).stdout.strip()


@pytest.mark.slow      # runs git to know the answer
def test_the_commit_is_the_one_git_names(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "a.txt").write_text("a")
    git(repo, "add", "a.txt")
    git(repo, "commit", "-q", "-m", "first")
    assert git_commit(repo) == git(repo, "rev-parse", "HEAD")                   # a loose ref
    git(repo, "pack-refs", "--all")
    assert not (repo / ".git" / "refs" / "heads" / "main").exists()
    assert git_commit(repo) == git(repo, "rev-parse", "HEAD")                   # packed
    first = git(repo, "rev-parse", "HEAD")
    (repo / "a.txt").write_text("b")
    git(repo, "commit", "-q", "-am", "second")
    git(repo, "worktree", "add", "-q", str(tmp_path / "old"), first)            # detached, in a worktree
    assert git_commit(tmp_path / "old") == first != git_commit(repo) == git(repo, "rev-parse", "HEAD")
    git(tmp_path / "old", "switch", "-q", "-c", "side")                         # a worktree's own branch
    assert git_commit(tmp_path / "old") == first
    assert git_commit(tmp_path) is None                                         # no checkout
