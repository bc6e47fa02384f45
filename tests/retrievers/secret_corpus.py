"""Planted credentials in every format the secret filter knows, built from a fixed seed.

The values are fake (random characters in the right shape), generated at import so the repository
holds no credential-looking literal. ``PLANTED`` maps a label to the exact secret value that must
never reach a context window; ``DOCUMENTS`` holds the files that carry them.
"""

from __future__ import annotations

import random
import string

_rng = random.Random(20261123)
_UP = string.ascii_uppercase + string.digits
_ALNUM = string.ascii_letters + string.digits
_URLSAFE = _ALNUM + "-_"
_B64 = _ALNUM + "+/"
_HEX = "0123456789abcdef"


def _r(alphabet: str, n: int) -> str:
    return "".join(_rng.choice(alphabet) for _ in range(n))


PLANTED: dict[str, str] = {
    "aws_id": "AKIA" + _r(_UP, 16),
    "aws_secret": _r(_B64, 40),
    "gcp_api": "AIza" + _r(_URLSAFE, 35),
    "gcp_oauth_secret": "GOCSPX-" + _r(_URLSAFE, 28),
    "gcp_token": "ya29." + _r(_URLSAFE, 60),
    "azure_account_key": _r(_B64, 86) + "==",
    "azure_client_secret": _r(_ALNUM, 3) + "8Q~" + _r(_ALNUM, 34),
    "github_pat": "ghp_" + _r(_ALNUM, 36),
    "github_fine": "github_pat_" + _r(_ALNUM, 22) + "_" + _r(_ALNUM, 59),
    "gitlab": "glpat-" + _r(_URLSAFE, 20),
    "slack_bot": "xoxb-" + _r("0123456789", 12) + "-" + _r("0123456789", 12) + "-" + _r(_ALNUM, 24),
    "slack_webhook": "https://hooks.slack.com/services/T" + _r(_UP, 8) + "/B" + _r(_UP, 8) + "/" + _r(_ALNUM, 24),
    "stripe": "sk_live_" + _r(_ALNUM, 24),
    "openai": "sk-proj-" + _r(_URLSAFE, 48),
    "anthropic": "sk-ant-api03-" + _r(_URLSAFE, 93) + "AA",
    "hf": "hf_" + _r(_ALNUM, 34),
    "npm": "npm_" + _r(_ALNUM, 36),
    "jwt": "eyJ" + _r(_URLSAFE, 30) + ".eyJ" + _r(_URLSAFE, 60) + "." + _r(_URLSAFE, 43),
    "bearer": _r(_URLSAFE, 40),
    "db_password": _r(_ALNUM, 10) + "!" + _r(_ALNUM, 6),
    "json_secret": _r(_HEX, 32),
    "yaml_token": _r(_ALNUM, 32),
    "url_password": _r(_ALNUM, 14),
    "env_api_key": _r(_ALNUM, 40),
    "sendgrid": "SG." + _r(_URLSAFE, 22) + "." + _r(_URLSAFE, 43),
}
_KEY_BODY = "\n".join(_r(_B64, 64) for _ in range(6))
PLANTED["private_key_line"] = _KEY_BODY.splitlines()[2]

DOCUMENTS: dict[str, str] = {
    "config/settings.py": f'''"""Service settings."""
import os

AWS_ACCESS_KEY_ID = "{PLANTED['aws_id']}"
aws_secret_access_key = "{PLANTED['aws_secret']}"
GOOGLE_API_KEY = '{PLANTED['gcp_api']}'
OAUTH = {{"client_secret": "{PLANTED['gcp_oauth_secret']}", "token": "{PLANTED['gcp_token']}"}}
DATABASE_PASSWORD = "{PLANTED['db_password']}"
DATABASE_URL = "postgres://admin:{PLANTED['url_password']}@db.internal:5432/app"


def client_headers():
    return {{"Authorization": "Bearer {PLANTED['bearer']}"}}
''',
    "deploy/azure.yaml": f"""storage:
  connection: DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={PLANTED['azure_account_key']};EndpointSuffix=core.windows.net
  client_secret: {PLANTED['azure_client_secret']}
ci:
  token: {PLANTED['yaml_token']}
""",
    "scripts/release.sh": f"""#!/bin/sh
export GITHUB_TOKEN={PLANTED['github_pat']}
export GH_FINE={PLANTED['github_fine']}
export GITLAB_TOKEN={PLANTED['gitlab']}
curl -X POST -d 'hi' {PLANTED['slack_webhook']}
curl -H "Authorization: Bearer {PLANTED['jwt']}" https://api.example.invalid
""",
    "src/app.js": f"""// payment client
const slack = new WebClient('{PLANTED['slack_bot']}');
const stripe = require('stripe')('{PLANTED['stripe']}');
const openai = new OpenAI({{ apiKey: "{PLANTED['openai']}" }});
const anthropic = new Anthropic({{ apiKey: "{PLANTED['anthropic']}" }});
const hf = "{PLANTED['hf']}";
const npmToken = "{PLANTED['npm']}";
const sg = "{PLANTED['sendgrid']}";
""",
    "notes/keys.md": f"""# Keys we rotated
The old deploy key, do not use:

-----BEGIN OPENSSH PRIVATE KEY-----
{_KEY_BODY}
-----END OPENSSH PRIVATE KEY-----

```json
{{"secret": "{PLANTED['json_secret']}"}}
```
""",
    "docker/compose.env.txt": f"API_KEY={PLANTED['env_api_key']}\n",
}

#: Secret files: never indexed at all, whatever they hold.
SECRET_FILES: dict[str, str] = {
    ".env": f"OPENAI_API_KEY={PLANTED['openai']}\nplain_marker_env=visible-only-if-leaked\n",
    ".env.production": "marker_env_production=leak\n",
    "certs/server.pem": "-----BEGIN CERTIFICATE-----\nmarker_pem_leak\n-----END CERTIFICATE-----\n",
    "keys/id_rsa": "marker_id_rsa_leak\n",
    ".npmrc": "//registry.npmjs.org/:_authToken=marker_npmrc_leak\n",
    ".aws/credentials": "[default]\nmarker_aws_credentials_leak\n",
}
SECRET_FILE_MARKERS = ("visible-only-if-leaked", "marker_env_production", "marker_pem_leak", "marker_id_rsa_leak",
                       "marker_npmrc_leak", "marker_aws_credentials_leak")
