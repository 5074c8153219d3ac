"""The git commit the product's source is checked out at, for the records that say which code
wrote them (run.json's `versions`, a report's header). Read from the checkout's files, not by
running git: a report and every run ask, and a process per ask cost each test and run one."""

from __future__ import annotations

import re
from pathlib import Path

SOURCE = Path(__file__).resolve().parent.parent     # the checkout holding ibstore/, explorer/, trainer/
_SHA = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")   # SHA-1, or SHA-256


def git_commit(checkout: Path = SOURCE) -> str | None:
    """HEAD's commit of `checkout` (a worktree's too: its .git is a file naming its git folder);
    None outside a checkout (an installed wheel) or where it cannot be read."""
    try:
        dot_git = checkout / ".git"
        folder = (checkout / dot_git.read_text().removeprefix("gitdir:").strip() if dot_git.is_file() else dot_git)
        common = folder / (folder / "commondir").read_text().strip() if (folder / "commondir").is_file() else folder
        head = (folder / "HEAD").read_text().strip()
        if not head.startswith("ref:"):
            return head if _SHA.fullmatch(head) else None
        ref = head.removeprefix("ref:").strip()
        for place in (folder, common):
            if (place / ref).is_file():
                sha = (place / ref).read_text().strip()
                return sha if _SHA.fullmatch(sha) else None
        packed = (common / "packed-refs").read_text() if (common / "packed-refs").is_file() else ""
        return next((line.split()[0] for line in packed.splitlines() if line.endswith(f" {ref}")), None)
    except (OSError, UnicodeDecodeError):
        return None
