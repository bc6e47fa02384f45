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


# ---------------------------------------------------------------------------------------------
# Formats by rule set. Each case is a snippet in the shape a provider documents, with a fresh
# random value; ``secret`` must not survive redaction. The rule names are those of gitleaks'
# default configuration (222 rules) and detect-secrets' plugins (27); the examples are our own.

import base64 as _base64
import json
from dataclasses import dataclass

_LOW = string.ascii_lowercase + string.digits
_LETTERS = string.ascii_letters
_D = string.digits


@dataclass(frozen=True)
class Case:
    rule: str
    text: str
    secret: str
    path: str = ""  # a rule about the file itself (a keystore): covered when the file is never read
    is_secret: bool = True  # False for a rule that flags something we deliberately keep (a public IP)


def _uuid(alphabet: str = _HEX) -> str:
    return "-".join(_r(alphabet, n) for n in (8, 4, 4, 4, 12))


def _tok(rule: str, secret: str) -> Case:
    """A token by its shape alone: passed to a call, no telling name around it."""
    return Case(rule, f'client.configure("{secret}")', secret)


def _kw(rule: str, key: str, secret: str, style: str = "env") -> Case:
    """A token under a name that mentions its vendor, as gitleaks' keyword rules expect."""
    text = {"env": f"{key}={secret}", "py": f'{key} = "{secret}"', "yaml": f"{key.lower()}: {secret}",
            "json": f'{{"{key.lower()}": "{secret}"}}'}[style]
    return Case(rule, text, secret)


def _pem() -> tuple[str, str]:
    body = "\n".join(_r(_B64, 64) for _ in range(5))
    return f"-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----", body.splitlines()[1]


_pem_text, _pem_line = _pem()
def _b64url_json(value: dict[str, object]) -> str:
    return _base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def _make_jwt() -> str:
    claims = {"sub": _r(_ALNUM, 16), "iat": _rng.randrange(10**9, 2 * 10**9), "scope": "deploy"}
    return _b64url_json({"alg": "HS256", "typ": "JWT"}) + "." + _b64url_json(claims) + "." + _r(_URLSAFE, 43)


_jwt = _make_jwt()

_GITLEAKS_LIST: list[Case] = [
    _tok("1password-secret-key", "A3-" + _r(_UP, 6) + "-" + _r(_UP, 11) + "-" + _r(_UP, 5) + "-" + _r(_UP, 5) + "-" + _r(_UP, 5)),
    _tok("1password-service-account-token", "ops_eyJ" + _r(_B64, 260)),
    _kw("adafruit-api-key", "ADAFRUIT_IO_KEY", _r(_LOW, 32)),
    _kw("adobe-client-id", "ADOBE_CLIENT_ID", _r(_HEX, 32), "py"),
    _tok("adobe-client-secret", "p8e-" + _r(_ALNUM, 32)),
    _tok("age-secret-key", "AGE-SECRET-KEY-1" + _r("QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L", 58)),
    _kw("airtable-api-key", "AIRTABLE_API_KEY", "key" + _r(_ALNUM, 14)),
    _tok("airtable-personnal-access-token", "pat" + _r(_ALNUM, 14) + "." + _r(_HEX, 64)),
    _kw("algolia-api-key", "ALGOLIA_ADMIN_KEY", _r(_LOW, 32), "yaml"),
    _tok("alibaba-access-key-id", "LTAI" + _r(_ALNUM, 20)),
    _kw("alibaba-secret-key", "ALIBABA_CLOUD_SECRET", _r(_LOW, 30)),
    _tok("anthropic-admin-api-key", "sk-ant-admin01-" + _r(_URLSAFE, 93) + "AA"),
    _tok("anthropic-api-key", "sk-ant-api03-" + _r(_URLSAFE, 93) + "AA"),
    _tok("artifactory-api-key", "AKCp" + _r(_ALNUM, 69)),
    _tok("artifactory-reference-token", "cmVmd" + _r(_ALNUM, 59)),
    _kw("asana-client-id", "ASANA_CLIENT_ID", _r(_D, 16)),
    _kw("asana-client-secret", "ASANA_CLIENT_SECRET", _r(_LOW, 32)),
    _kw("atlassian-api-token", "JIRA_API_TOKEN", _r(_LOW, 24)),
    _tok("authress-service-client-access-key",
         "sc_" + _r(_LOW, 10) + "." + _r(_LOW, 5) + ".acc_" + _r(_LOW, 20) + "." + _r(_ALNUM, 40)),
    _tok("aws-access-token", "AKIA" + _r(string.ascii_uppercase + "234567", 16)),
    _tok("aws-amazon-bedrock-api-key-long-lived", "ABSK" + _r(_B64, 120)),
    _tok("aws-amazon-bedrock-api-key-short-lived", "bedrock-api-key-YmVkcm9jay5hbWF6b25hd3MuY29t" + _r(_B64, 60)),
    _tok("azure-ad-client-secret", _r(_ALNUM, 3) + "8Q~" + _r(_ALNUM, 34)),
    _kw("beamer-api-token", "BEAMER_API_KEY", "b_" + _r(_URLSAFE, 44)),
    _kw("bitbucket-client-id", "BITBUCKET_CLIENT_ID", _r(_LOW, 32)),
    _kw("bitbucket-client-secret", "BITBUCKET_CLIENT_SECRET", _r(_URLSAFE, 64)),
    _kw("bittrex-access-key", "BITTREX_ACCESS_KEY", _r(_LOW, 32)),
    _kw("bittrex-secret-key", "BITTREX_SECRET_KEY", _r(_LOW, 32)),
    _kw("cisco-meraki-api-key", "MERAKI_DASHBOARD_API_KEY", _r(_HEX, 40)),
    _tok("clickhouse-cloud-api-secret-key", "4b1d" + _r(_ALNUM, 38)),
    _tok("clojars-api-token", "CLOJARS_" + _r(_LOW, 60)),
    _kw("cloudflare-api-key", "CLOUDFLARE_API_KEY", _r(_LOW + "_-", 40)),
    _kw("cloudflare-global-api-key", "CLOUDFLARE_GLOBAL_API_KEY", _r(_HEX, 37)),
    _tok("cloudflare-origin-ca-key", "v1.0-" + _r(_HEX, 24) + "-" + _r(_HEX, 146)),
    _kw("codecov-access-token", "CODECOV_TOKEN", _r(_LOW, 32)),
    _kw("cohere-api-token", "CO_API_KEY", _r(_ALNUM, 40)),
    _kw("coinbase-access-token", "COINBASE_ACCESS_TOKEN", _r(_URLSAFE, 64)),
    _kw("confluent-access-token", "CONFLUENT_ACCESS_KEY", _r(_LOW, 16)),
    _kw("confluent-secret-key", "CONFLUENT_SECRET_KEY", _r(_LOW, 64)),
    _kw("contentful-delivery-api-token", "CONTENTFUL_DELIVERY_TOKEN", _r(_URLSAFE, 43)),
    Case("curl-auth-header", f'curl -H "Authorization: Bearer {(_v := _r(_URLSAFE, 40))}" https://api.example.invalid', _v),
    Case("curl-auth-user", f"curl -u deploy:{(_v := _r(_ALNUM, 16))} https://ci.example.invalid/api", _v),
    _tok("databricks-api-token", "dapi" + _r(_HEX, 32)),
    _kw("datadog-access-token", "DATADOG_APP_KEY", _r(_LOW, 40)),
    _kw("defined-networking-api-token", "DNKEY", "dnkey-" + _r(_LOW, 26) + "-" + _r(_LOW, 52)),
    _tok("digitalocean-access-token", "doo_v1_" + _r(_HEX, 64)),
    _tok("digitalocean-pat", "dop_v1_" + _r(_HEX, 64)),
    _tok("digitalocean-refresh-token", "dor_v1_" + _r(_HEX, 64)),
    _kw("discord-api-token", "DISCORD_API_TOKEN", _r(_HEX, 64)),
    _kw("discord-client-id", "DISCORD_CLIENT_ID", _r(_D, 18)),
    _kw("discord-client-secret", "DISCORD_CLIENT_SECRET", _r(_URLSAFE, 32)),
    _tok("doppler-api-token", "dp.pt." + _r(_ALNUM, 43)),
    _kw("droneci-access-token", "DRONECI_ACCESS_TOKEN", _r(_LOW, 32)),
    _kw("dropbox-api-token", "DROPBOX_APP_KEY", _r(_LOW, 15)),
    _kw("dropbox-long-lived-api-token", "DROPBOX_TOKEN", _r(_LOW, 11) + "AAAAAAAAAA" + _r(_URLSAFE, 43)),
    _kw("dropbox-short-lived-api-token", "DROPBOX_ACCESS_TOKEN", "sl." + _r(_URLSAFE, 135)),
    _tok("duffel-api-token", "duffel_test_" + _r(_URLSAFE, 43)),
    _tok("dynatrace-api-token", "dt0c01." + _r(_UP, 24) + "." + _r(_UP, 64)),
    _tok("easypost-api-token", "EZAK" + _r(_ALNUM, 54)),
    _tok("easypost-test-api-token", "EZTK" + _r(_ALNUM, 54)),
    _kw("etsy-access-token", "ETSY_API_KEY", _r(_LOW, 24)),
    _tok("facebook-access-token", _r(_D, 15) + "|" + _r(_URLSAFE, 32)),
    _tok("facebook-page-access-token", "EAAC" + _r(_ALNUM, 120)),
    _kw("facebook-secret", "FACEBOOK_APP_SECRET", _r(_HEX, 32)),
    _kw("fastly-api-token", "FASTLY_API_TOKEN", _r(_URLSAFE, 32)),
    _kw("finicity-api-token", "FINICITY_APP_KEY", _r(_HEX, 32)),
    _kw("finicity-client-secret", "FINICITY_SECRET", _r(_LOW, 20)),
    _kw("finnhub-access-token", "FINNHUB_API_KEY", _r(_LOW, 20)),
    _kw("flickr-access-token", "FLICKR_API_KEY", _r(_LOW, 32)),
    _tok("flutterwave-encryption-key", "FLWSECK_TEST-" + _r("abcdefgh0123456789", 12)),
    _tok("flutterwave-public-key", "FLWPUBK_TEST-" + _r("abcdefgh0123456789", 32) + "-X"),
    _tok("flutterwave-secret-key", "FLWSECK_TEST-" + _r("abcdefgh0123456789", 32) + "-X"),
    _tok("flyio-access-token", "fo1_" + _r(_URLSAFE, 43)),
    _tok("frameio-api-token", "fio-u-" + _r(_URLSAFE, 64)),
    Case("freemius-secret-key", f"'secret_key' => '{(_v := 'sk_' + _r(_ALNUM, 29))}',", _v),
    _kw("freshbooks-access-token", "FRESHBOOKS_ACCESS_TOKEN", _r(_LOW, 64)),
    _tok("gcp-api-key", "AIza" + _r(_URLSAFE, 35)),
    _kw("generic-api-key", "service_api_token", _r(_ALNUM, 32), "py"),
    _tok("github-app-token", "ghs_" + _r(_ALNUM, 36)),
    _tok("github-fine-grained-pat", "github_pat_" + _r(_ALNUM, 22) + "_" + _r(_ALNUM, 59)),
    _tok("github-oauth", "gho_" + _r(_ALNUM, 36)),
    _tok("github-pat", "ghp_" + _r(_ALNUM, 36)),
    _tok("github-refresh-token", "ghr_" + _r(_ALNUM, 36)),
    _tok("gitlab-cicd-job-token", "glcbt-" + _r(_ALNUM, 3) + "_" + _r(_URLSAFE, 20)),
    _tok("gitlab-deploy-token", "gldt-" + _r(_URLSAFE, 20)),
    _tok("gitlab-feature-flag-client-token", "glffct-" + _r(_URLSAFE, 20)),
    _tok("gitlab-feed-token", "glft-" + _r(_URLSAFE, 20)),
    _tok("gitlab-incoming-mail-token", "glimt-" + _r(_URLSAFE, 25)),
    _tok("gitlab-kubernetes-agent-token", "glagent-" + _r(_URLSAFE, 50)),
    _tok("gitlab-oauth-app-secret", "gloas-" + _r(_URLSAFE, 64)),
    _tok("gitlab-pat", "glpat-" + _r(_URLSAFE, 20)),
    _tok("gitlab-pat-routable", "glpat-" + _r(_ALNUM, 40) + "." + _r(_LOW, 9)),
    _tok("gitlab-ptt", "glptt-" + _r(_HEX, 40)),
    _tok("gitlab-rrt", "GR1348941" + _r(_URLSAFE, 20)),
    _tok("gitlab-runner-authentication-token", "glrt-" + _r(_URLSAFE, 20)),
    _tok("gitlab-runner-authentication-token-routable", "glrt-t1_" + _r(_ALNUM, 30) + "." + _r(_LOW, 9)),
    _tok("gitlab-scim-token", "glsoat-" + _r(_URLSAFE, 20)),
    Case("gitlab-session-cookie", f"Cookie: _gitlab_session={(_v := _r(_LOW, 32))}", _v),
    _kw("gitter-access-token", "GITTER_TOKEN", _r(_URLSAFE, 40)),
    _kw("gocardless-api-token", "GOCARDLESS_ACCESS_TOKEN", "live_" + _r(_URLSAFE, 40)),
    _tok("grafana-api-key", "eyJrIjoi" + _r(_ALNUM, 80)),
    _tok("grafana-cloud-api-token", "glc_" + _r(_ALNUM, 40)),
    _tok("grafana-service-account-token", "glsa_" + _r(_ALNUM, 32) + "_" + _r(_HEX, 8)),
    _tok("harness-api-key", "pat." + _r(_URLSAFE, 22) + "." + _r(_ALNUM, 24) + "." + _r(_ALNUM, 20)),
    _tok("hashicorp-tf-api-token", _r(_ALNUM, 14) + ".atlasv1." + _r(_URLSAFE, 65)),
    Case("hashicorp-tf-password", f'administrator_login_password = "{(_v := _r(_LOW, 16))}"', _v),
    _kw("heroku-api-key", "HEROKU_API_KEY", _uuid()),
    _tok("heroku-api-key-v2", "HRKU-AA" + _r(_URLSAFE, 58)),
    _kw("hubspot-api-key", "HUBSPOT_API_KEY", _uuid("0123456789ABCDEF")),
    _tok("huggingface-access-token", "hf_" + _r(_LETTERS, 34)),
    _tok("huggingface-organization-api-token", "api_org_" + _r(_LETTERS, 34)),
    _tok("infracost-api-token", "ico-" + _r(_ALNUM, 32)),
    _kw("intercom-api-key", "INTERCOM_ACCESS_TOKEN", _r(_URLSAFE, 60)),
    _tok("intra42-client-secret", "s-s4t2ud-" + _r(_HEX, 64)),
    _kw("jfrog-api-key", "JFROG_API_KEY", _r(_LOW, 73)),
    _kw("jfrog-identity-token", "ARTIFACTORY_IDENTITY_TOKEN", _r(_LOW, 64)),
    _tok("jwt", _jwt),
    _tok("jwt-base64", _base64.b64encode(_jwt.encode()).decode()),
    _kw("kraken-access-token", "KRAKEN_API_SECRET", _r(_B64, 88)),
    Case("kubernetes-secret-yaml",
         "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ntype: Opaque\ndata:\n  password: "
         + (_v := _base64.b64encode(_r(_ALNUM, 18).encode()).decode()) + "\n", _v),
    _kw("kucoin-access-token", "KUCOIN_API_KEY", _r(_HEX, 24)),
    _kw("kucoin-secret-key", "KUCOIN_API_SECRET", _uuid()),
    _kw("launchdarkly-access-token", "LAUNCHDARKLY_ACCESS_TOKEN", _r(_URLSAFE, 40)),
    _tok("linear-api-key", "lin_api_" + _r(_ALNUM, 40)),
    _kw("linear-client-secret", "LINEAR_CLIENT_SECRET", _r(_HEX, 32)),
    _kw("linkedin-client-id", "LINKEDIN_CLIENT_ID", _r(_LOW, 14)),
    _kw("linkedin-client-secret", "LINKEDIN_CLIENT_SECRET", _r(_LOW, 16)),
    _kw("lob-api-key", "LOB_API_KEY", "live_" + _r(_HEX, 35)),
    _kw("lob-pub-api-key", "LOB_PUBLISHABLE_KEY", "test_pub_" + _r(_HEX, 31)),
    _kw("looker-client-id", "LOOKER_CLIENT_ID", _r(_LOW, 20)),
    _kw("looker-client-secret", "LOOKER_CLIENT_SECRET", _r(_LOW, 24)),
    _kw("mailchimp-api-key", "MAILCHIMP_API_KEY", _r(_HEX, 32) + "-us12"),
    _kw("mailgun-private-api-token", "MAILGUN_API_KEY", "key-" + _r(_HEX, 32)),
    _kw("mailgun-pub-key", "MAILGUN_PUBLIC_KEY", "pubkey-" + _r(_HEX, 32)),
    _kw("mailgun-signing-key", "MAILGUN_SIGNING_KEY",
        _r("abcdefgh0123456789", 32) + "-" + _r("abcdefgh0123456789", 8) + "-" + _r("abcdefgh0123456789", 8)),
    _kw("mapbox-api-token", "MAPBOX_ACCESS_TOKEN", "pk." + _r(_LOW, 60) + "." + _r(_LOW, 22)),
    _kw("mattermost-access-token", "MATTERMOST_TOKEN", _r(_LOW, 26)),
    _tok("maxmind-license-key", _r(_ALNUM, 6) + "_" + _r(_ALNUM, 29) + "_mmk"),
    _kw("messagebird-api-token", "MESSAGEBIRD_API_KEY", _r(_LOW, 25)),
    _kw("messagebird-client-id", "MESSAGEBIRD_CLIENT_ID", _uuid()),
    Case("microsoft-teams-webhook",
         (_v := f"https://acme.webhook.office.com/webhookb2/{_uuid()}@{_uuid()}/IncomingWebhook/{_r(_HEX, 32)}/{_uuid()}"),
         _v),
    _kw("netlify-access-token", "NETLIFY_AUTH_TOKEN", _r(_URLSAFE, 43)),
    _kw("new-relic-browser-api-token", "NEW_RELIC_BROWSER_KEY", "NRJS-" + _r(_HEX, 19)),
    _kw("new-relic-insert-key", "NEW_RELIC_INSERT_KEY", "NRII-" + _r(_LOW + "-", 32)),
    _kw("new-relic-user-api-id", "NEW_RELIC_USER_API_ID", _r(_LOW, 64)),
    _kw("new-relic-user-api-key", "NEW_RELIC_API_KEY", "NRAK-" + _r(_UP, 27)),
    _tok("notion-api-token", "ntn_" + _r(_D, 11) + _r(_ALNUM, 35)),
    _tok("npm-access-token", "npm_" + _r(_ALNUM, 36)),
    Case("nuget-config-password", f'<add key="ClearTextPassword" value="{(_v := _r(_ALNUM, 16))}" />', _v),
    _kw("nytimes-access-token", "NYTIMES_API_KEY", _r(_URLSAFE, 32)),
    _tok("octopus-deploy-api-key", "API-" + _r(_UP, 26)),
    _kw("okta-access-token", "OKTA_API_TOKEN", "00" + _r(_URLSAFE, 40)),
    _tok("openai-api-key", "sk-proj-" + _r(_URLSAFE, 74) + "T3BlbkFJ" + _r(_URLSAFE, 74)),
    _tok("openshift-user-token", "sha256~" + _r(_URLSAFE, 43)),
    _tok("perplexity-api-key", "pplx-" + _r(_ALNUM, 48)),
    Case("pkcs12-file", "", "", path="certs/client.p12"),
    _kw("plaid-api-token", "PLAID_ACCESS_TOKEN", "access-sandbox-" + _uuid()),
    _kw("plaid-client-id", "PLAID_CLIENT_ID", _r(_LOW, 24)),
    _kw("plaid-secret-key", "PLAID_SECRET", _r(_LOW, 30)),
    _tok("planetscale-api-token", "pscale_tkn_" + _r(_URLSAFE, 40)),
    _tok("planetscale-oauth-token", "pscale_oauth_" + _r(_URLSAFE, 40)),
    _tok("planetscale-password", "pscale_pw_" + _r(_URLSAFE, 40)),
    _tok("postman-api-token", "PMAK-" + _r(_HEX, 24) + "-" + _r(_HEX, 34)),
    _tok("prefect-api-token", "pnu_" + _r(_ALNUM, 36)),
    Case("private-key", _pem_text, _pem_line),
    _kw("privateai-api-token", "PRIVATE_AI_API_KEY", _r(_LOW, 32)),
    _tok("pulumi-api-token", "pul-" + _r(_HEX, 40)),
    _tok("pypi-upload-token", "pypi-AgEIcHlwaS5vcmc" + _r(_URLSAFE, 70)),
    _kw("rapidapi-access-token", "RAPIDAPI_KEY", _r(_URLSAFE, 50)),
    _tok("readme-api-token", "rdme_" + _r(_LOW, 70)),
    _tok("rubygems-api-token", "rubygems_" + _r(_HEX, 48)),
    _tok("scalingo-api-token", "tk-us-" + _r(_URLSAFE, 48)),
    _kw("sendbird-access-id", "SENDBIRD_APP_ID", _uuid()),
    _kw("sendbird-access-token", "SENDBIRD_API_TOKEN", _r(_HEX, 40)),
    _tok("sendgrid-api-token", "SG." + _r(_URLSAFE, 22) + "." + _r(_URLSAFE, 43)),
    _tok("sendinblue-api-token", "xkeysib-" + _r(_HEX, 64) + "-" + _r(_ALNUM, 16)),
    _kw("sentry-access-token", "SENTRY_AUTH_TOKEN", _r(_HEX, 64)),
    _tok("sentry-org-token", "sntrys_eyJpYXQiO" + _r(_ALNUM, 30) + "LCJyZWdpb25fdXJs" + _r(_ALNUM, 30) + "_" + _r(_ALNUM, 43)),
    _tok("sentry-user-token", "sntryu_" + _r(_HEX, 64)),
    _tok("settlemint-application-access-token", "sm_aat_" + _r(_ALNUM, 16)),
    _tok("settlemint-personal-access-token", "sm_pat_" + _r(_ALNUM, 16)),
    _tok("settlemint-service-access-token", "sm_sat_" + _r(_ALNUM, 16)),
    _tok("shippo-api-token", "shippo_live_" + _r(_HEX, 40)),
    _tok("shopify-access-token", "shpat_" + _r(_HEX, 32)),
    _tok("shopify-custom-access-token", "shpca_" + _r(_HEX, 32)),
    _tok("shopify-private-app-access-token", "shppa_" + _r(_HEX, 32)),
    _tok("shopify-shared-secret", "shpss_" + _r(_HEX, 32)),
    Case("sidekiq-secret", f"BUNDLE_ENTERPRISE__CONTRIBSYS__COM={(_v := _r(_HEX, 8) + ':' + _r(_HEX, 8))}", _v),
    Case("sidekiq-sensitive-url", f"source 'https://{_r(_HEX, 8)}:{(_v := _r(_HEX, 8))}@gems.contribsys.com/'", _v),
    _tok("slack-app-token", "xapp-1-A" + _r(_UP, 10) + "-" + _r(_D, 13) + "-" + _r(_LOW, 64)),
    _tok("slack-bot-token", "xoxb-" + _r(_D, 12) + "-" + _r(_D, 12) + "-" + _r(_ALNUM, 24)),
    _tok("slack-config-access-token", "xoxe.xoxp-1-" + _r(_UP, 165)),
    _tok("slack-config-refresh-token", "xoxe-1-" + _r(_UP, 146)),
    _tok("slack-legacy-bot-token", "xoxb-" + _r(_D, 10) + "-" + _r(_ALNUM, 24)),
    _tok("slack-legacy-token", "xoxs-" + _r(_D, 10) + "-" + _r(_D, 10) + "-" + _r(_D, 12) + "-" + _r(_HEX, 64)),
    _tok("slack-legacy-workspace-token", "xoxr-" + _r(_ALNUM, 40)),
    _tok("slack-user-token", "xoxp-" + _r(_D, 12) + "-" + _r(_D, 12) + "-" + _r(_D, 12) + "-" + _r(_ALNUM, 32)),
    _tok("slack-webhook-url", "https://hooks.slack.com/services/T" + _r(_UP, 8) + "/B" + _r(_UP, 10) + "/" + _r(_ALNUM, 24)),
    _kw("snyk-api-token", "SNYK_TOKEN", _uuid()),
    _kw("sonar-api-token", "SONAR_TOKEN", "squ_" + _r(_HEX, 40)),
    _tok("sourcegraph-access-token", "sgp_" + _r(_HEX, 16) + "_" + _r(_HEX, 40)),
    _tok("square-access-token", "sq0atp-" + _r(_URLSAFE, 22)),
    _kw("squarespace-access-token", "SQUARESPACE_API_KEY", _uuid()),
    _tok("stripe-access-token", "sk_live_" + _r(_ALNUM, 24)),
    _kw("sumologic-access-id", "SUMO_ACCESS_ID", "su" + _r(_ALNUM, 12)),
    _kw("sumologic-access-token", "SUMO_ACCESS_KEY", _r(_ALNUM, 64)),
    _kw("telegram-bot-api-token", "TELEGRAM_BOT_TOKEN", _r(_D, 10) + ":A" + _r(_URLSAFE, 34)),
    _kw("travisci-access-token", "TRAVIS_TOKEN", _r(_LOW, 22)),
    _tok("twilio-api-key", "SK" + _r(_HEX, 32)),
    _kw("twitch-api-token", "TWITCH_CLIENT_SECRET", _r(_LOW, 30)),
    _kw("twitter-access-secret", "TWITTER_ACCESS_SECRET", _r(_LOW, 45)),
    _kw("twitter-access-token", "TWITTER_ACCESS_TOKEN", _r(_D, 19) + "-" + _r(_ALNUM, 40)),
    _kw("twitter-api-key", "TWITTER_API_KEY", _r(_LOW, 25)),
    _kw("twitter-api-secret", "TWITTER_API_SECRET", _r(_LOW, 50)),
    _kw("twitter-bearer-token", "TWITTER_BEARER", "A" * 22 + _r(_ALNUM, 90)),
    _kw("typeform-api-token", "TYPEFORM_TOKEN", "tfp_" + _r(_URLSAFE, 59)),
    _tok("vault-batch-token", "hvb." + _r(_URLSAFE, 150)),
    _tok("vault-service-token", "hvs." + _r(_URLSAFE, 100)),
    _kw("yandex-access-token", "YANDEX_OAUTH", "t1." + _r(_ALNUM, 20) + "." + _r(_URLSAFE, 86)),
    _kw("yandex-api-key", "YANDEX_API_KEY", "AQVN" + _r(_URLSAFE, 36)),
    _kw("yandex-aws-access-token", "YANDEX_ACCESS_KEY", "YC" + _r(_URLSAFE, 38)),
    _kw("zendesk-secret-key", "ZENDESK_API_TOKEN", _r(_LOW, 40)),
]
GITLEAKS_CASES: dict[str, Case] = {c.rule: c for c in _GITLEAKS_LIST}

_DETECT_SECRETS_LIST: list[Case] = [
    _tok("ArtifactoryDetector", "AKCp" + _r(_ALNUM, 69)),
    _tok("AWSKeyDetector", "AKIA" + _r(_UP, 16)),
    Case("AzureStorageKeyDetector", f"AccountName=acct;AccountKey={(_v := _r(_B64, 86) + '==')};", _v),
    Case("BasicAuthDetector", f"https://svc:{(_v := _r(_ALNUM, 14))}@internal.example.invalid/x", _v),
    Case("CloudantDetector", f"https://admin:{(_v := _r(string.ascii_lowercase, 24))}@acct.cloudant.com", _v),
    _tok("DiscordBotTokenDetector", "M" + _r(_URLSAFE, 23) + "." + _r(_URLSAFE, 6) + "." + _r(_URLSAFE, 27)),
    _tok("GitHubTokenDetector", "ghp_" + _r(_ALNUM, 36)),
    _tok("GitLabTokenDetector", "glpat-" + _r(_URLSAFE, 20)),
    Case("Base64HighEntropyString", f'blob = "{(_v := _r(_B64, 44))}"', _v),
    Case("HexHighEntropyString", f'digest = "{(_v := _r(_HEX, 40))}"', _v),
    Case("IbmCloudIamDetector", f'ibm_cloud_iam_api_key = "{(_v := _r(_URLSAFE, 44))}"', _v),
    Case("IbmCosHmacDetector", f'ibm_cos_secret_access_key = "{(_v := _r(_HEX, 48))}"', _v),
    # A public address is not a credential: kept on purpose, so this plugin stays uncovered.
    Case("IPPublicDetector", "upstream = 93.184.216.34", "93.184.216.34", is_secret=False),
    _tok("JwtTokenDetector", _make_jwt()),
    Case("KeywordDetector", f'db_password = "{(_v := _r(_ALNUM, 12))}"', _v),
    _tok("MailchimpDetector", _r(_HEX, 32) + "-us6"),
    Case("NpmDetector", f"//registry.npmjs.org/:_authToken={(_v := 'npm_' + _r(_ALNUM, 36))}", _v),
    _tok("OpenAIDetector", "sk-" + _r(_ALNUM, 20) + "T3BlbkFJ" + _r(_ALNUM, 20)),
    Case("PrivateKeyDetector", _pem_text, _pem_line),
    _tok("PypiTokenDetector", "pypi-AgEIcHlwaS5vcmc" + _r(_URLSAFE, 70)),
    _tok("SendGridDetector", "SG." + _r(_URLSAFE, 22) + "." + _r(_URLSAFE, 43)),
    _tok("SlackDetector", "xoxb-" + _r(_D, 12) + "-" + _r(_D, 12) + "-" + _r(_ALNUM, 24)),
    Case("SoftlayerDetector", f'softlayer_api_key = "{(_v := _r(_HEX, 64))}"', _v),
    _tok("SquareOAuthDetector", "sq0csp-" + _r(_URLSAFE, 43)),
    _tok("StripeDetector", "sk_live_" + _r(_ALNUM, 24)),
    _tok("TelegramBotTokenDetector", _r(_D, 10) + ":AA" + _r(_URLSAFE, 33)),
    _tok("TwilioKeyDetector", "AC" + _r(_HEX, 32)),
]
DETECT_SECRETS_CASES: dict[str, Case] = {c.rule: c for c in _DETECT_SECRETS_LIST}

# The shapes that once got through: a secret key beside its id in a comment, a kubeconfig key, a
# committed .netrc, a URL with an empty user, an encoded blob under a plain name, a token in a
# commit message, a Twilio account SID.
_aws_id, _aws_key = "AKIA" + _r(_UP, 16), _r(_B64, 40)
_kube_key = _base64.b64encode(("-----BEGIN RSA PRIVATE KEY-----\n" + _r(_B64, 200)).encode()).decode()
_backup_blob = _base64.b64encode(_rng.randbytes(120)).decode()
_HOSTILE_LIST: list[Case] = [
    Case("aws-secret-in-comment", f"# deploy user: {_aws_id} / {_aws_key}\nregion = 'eu-west-1'", _aws_key),
    Case("kubeconfig-client-key-data", f"users:\n- name: admin\n  user:\n    client-key-data: {_kube_key}\n", _kube_key),
    Case("netrc-line", f"machine api.example.invalid login deploy password {(_v := _r(_ALNUM, 12))}", _v),
    Case("netrc-multiline", f"machine git.example.invalid\n  login bot\n  password {(_v := _r(_LOW, 10))}\n", _v),
    Case("redis-empty-user", f"REDIS_URL=redis://:{(_v := _r(_ALNUM, 20))}@cache.internal:6379/0", _v),
    Case("base64-under-plain-key", f"backup:\n  blob: {_backup_blob}\n", _backup_blob),
    Case("pat-in-commit-message", f"fix: rotate deploy token (old one was {(_v := 'ghp_' + _r(_ALNUM, 36))})", _v),
    Case("twilio-account-sid", f"TWILIO_ACCOUNT = '{(_v := 'AC' + _r(_HEX, 32))}'", _v),
]
HOSTILE_CASES: dict[str, Case] = {c.rule: c for c in _HOSTILE_LIST}
