"""Small repositories the retriever and context tests build: git init, files, commits."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

APP_PY = '''"""Payments service."""
import json


class PaymentGateway:
    """Talks to the card processor."""

    def __init__(self, api_url: str) -> None:
        self.api_url = api_url

    def charge_card(self, amount_cents: int, card_token: str) -> dict:
        """Charge a card; retries on a timeout."""
        payload = json.dumps({"amount": amount_cents, "card": card_token})
        return send_request(self.api_url, payload)

    def refund(self, charge_id: str) -> dict:
        """Refund a charge in full."""
        return send_request(self.api_url + "/refund", charge_id)
'''

NET_PY = '''"""HTTP plumbing."""


def send_request(url: str, body: str, retries: int = 3) -> dict:
    """POST body to url, retrying with exponential backoff."""
    for attempt in range(retries):
        try:
            return _post(url, body)
        except TimeoutError:
            continue
    raise TimeoutError(url)


def _post(url, body):
    return {"url": url, "body": body}
'''

UTIL_JS = '''// Formatting helpers for the dashboard.
export function formatAmount(cents) {
  return (cents / 100).toFixed(2);
}

class Ledger {
  /** Sum of all entries. */
  total(entries) { return entries.reduce((a, e) => a + e.amount, 0); }
}
'''

README = "# Payments\n\nCharge cards and issue refunds. See app.py for the gateway.\n"


def git(root: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "t@example.invalid"}
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True, env=env).stdout


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def make_payments_repo(root: Path, git_history: bool = True, extra: dict[str, str] | None = None) -> Path:
    """The payments repository in ``root``: two commits when ``git_history``, else a plain folder."""
    write(root, {"app.py": APP_PY, "net.py": NET_PY, "README.md": README, **(extra or {})})
    if git_history:
        git(root, "init", "-q", "-b", "main")
        git(root, "add", ".")
        git(root, "commit", "-q", "-m", "initial payments service")
        write(root, {"web/util.js": UTIL_JS, "net.py": NET_PY.replace("retries: int = 3", "retries: int = 5")})
        git(root, "add", ".")
        git(root, "commit", "-q", "-m", "raise retry count for timeouts; dashboard formatting")
    else:
        write(root, {"web/util.js": UTIL_JS})
    return root
