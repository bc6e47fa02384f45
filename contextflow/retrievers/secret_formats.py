"""Token formats that identify a credential by their shape alone (a vendor prefix, a fixed layout).

Each entry is ``(kind, pattern)``. A group named ``v`` marks the part to hide (the rest, such as
``password=``, stays readable); without one the whole match goes. Order matters only for the
label: when spans overlap the earlier entry names the merged span, so multi-line blocks and
precise vendor formats come before generic shapes.

Formats that need context (a key name, a nearby AWS key id, entropy) live in
``secret_context``; this table is the part a regular expression can decide on its own.
"""

from __future__ import annotations

import re

_END = r"(?![A-Za-z0-9_\-])"  # a token ends where its alphabet does
_B64END = r"(?![A-Za-z0-9+/=])"


def _p(pattern: str, flags: int = 0) -> re.Pattern[str]:
    return re.compile(pattern, flags)


#: (kind, pattern) for formats recognisable without context.
TOKEN_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    # ---- blocks and structured credentials -------------------------------------------------
    # A PEM private key, also inside a JSON string with literal "\n"; an unterminated block is
    # redacted to the end of the text rather than left half-visible.
    ("private-key", _p(
        r"-----BEGIN[ A-Z0-9_-]*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?"
        r"(?:-----END[ A-Z0-9_-]*PRIVATE KEY(?: BLOCK)?-----|\Z)"
    )),
    ("putty-private-key", _p(r"PuTTY-User-Key-File-\d:[\s\S]*?(?:Private-MAC: *\S+|\Z)")),
    # base64 of "-----BEGIN": a PEM block stored encoded (kubeconfig client-key-data, k8s secrets).
    ("private-key-base64", _p(r"LS0tLS1CRUdJTi[A-Za-z0-9+/]{16,}={0,2}" + _B64END)),
    ("aws-access-key-id", _p(r"\b(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|AROA|APKA)[A-Z0-9]{16}\b")),
    ("aws-secret-access-key", _p(
        r"(?i)aws_?secret_?(?:access_?)?key[\"']?\s*[:=]{1,2}>?\s*[\"']?(?P<v>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])"
    )),
    ("aws-bedrock-key", _p(r"\bABSK[A-Za-z0-9+/]{100,}={0,2}|bedrock-api-key-YmVkcm9jay5hbWF6b25hd3MuY29t[\w%&?=.+/-]{20,}")),
    # .netrc with its machine, login and password fields on one line (also as a diff line).
    ("netrc-password", _p(r"(?i)\bmachine\s+\S+\s+(?:login\s+\S+\s+)?password[ \t]+(?P<v>[^\s\"'=:][^\s\"']*)")),
    ("nuget-password", _p(
        r"(?i)<add\s+key=\"(?:ClearText)?Password\"\s+value=\"(?P<v>[^\"]{4,})\""
    )),
    ("curl-user-password", _p(r"(?:\s-u|--user)[ =]+[\"']?[^\s:\"']*:(?P<v>[^\s\"']{3,})")),
    ("authorization-header", _p(
        r"(?i)\bauthorization[\"']?\s*[:=]\s*[\"']?(?:bearer|basic|token|digest|api-?key|sso-key)?[ \t]*"
        r"(?P<v>[A-Za-z0-9\-._~+/]{12,}=*)"
    )),
    ("bearer-token", _p(r"(?i)(?<=\bbearer\s)\s*[A-Za-z0-9\-._~+/]{16,}=*")),
    # user:password@host in a URL: only the password goes; the user may be empty (redis://:pw@host).
    ("url-password", _p(r"(?<=://)(?:[^\s:/@'\"]*):(?P<v>[^\s@/'\"]{3,})(?=@[^\s/'\"]+)")),
    ("npm-auth", _p(r"(?i)(?<![\w-])_auth(?:Token)?[\"']?\s*[=:]\s*[\"']?(?P<v>[^\s\"']{8,})")),
    ("softlayer-api-key", _p(r"(?i)api\.softlayer\.com/(?:soap|rest)/v3(?:\.1)?/(?P<v>[a-z0-9]{64})")),
    ("sidekiq-credentials", _p(r"(?i)contribsys__com[\"']?\s*[:=]\s*[\"']?(?P<v>[a-f0-9]{8}:[a-f0-9]{8})")),
    # ---- cloud providers ------------------------------------------------------------------
    ("gcp-api-key", _p(r"\bAIza[0-9A-Za-z_\-]{35}" + _END)),
    ("gcp-oauth-secret", _p(r"\bGOCSPX-[A-Za-z0-9_\-]{28}" + _END)),
    ("gcp-oauth-token", _p(r"\bya29\.[0-9A-Za-z_\-]{20,}")),
    ("azure-storage-key", _p(r"(?i)(?<=AccountKey=)[A-Za-z0-9+/]{80,90}={0,2}")),
    ("azure-sas-signature", _p(r"(?i)(?<=[?&]sig=)[A-Za-z0-9%+/=]{30,}")),
    ("azure-client-secret", _p(r"(?<![A-Za-z0-9_~.])[A-Za-z0-9_~.]{3}\dQ~[A-Za-z0-9_~.\-]{31,34}(?![A-Za-z0-9_~.\-])")),
    ("alibaba-access-key-id", _p(r"\bLTAI[A-Za-z0-9]{20}\b")),
    ("digitalocean-token", _p(r"\bdo[opr]_v1_[a-f0-9]{64}\b")),
    ("cloudflare-origin-ca-key", _p(r"\bv1\.0-[a-f0-9]{24}-[a-f0-9]{140,}")),
    ("yandex-token", _p(r"\bt1\.[A-Za-z0-9_\-]+=*\.[A-Za-z0-9_\-]{86}=*|\bAQVN[A-Za-z0-9_\-]{35,38}" + _END)),
    ("vault-token", _p(r"\bhv[sb]\.[\w-]{90,300}|\bs\.(?=[A-Za-z0-9]*\d)(?=[A-Za-z0-9]*[A-Z])[A-Za-z0-9]{24}\b")),
    ("terraform-cloud-token", _p(r"\b[A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9\-_=]{60,70}")),
    ("openshift-token", _p(r"\bsha256~[\w-]{43}" + _END)),
    ("flyio-token", _p(r"\bfo1_[\w-]{43}|\bfm[12][ar]?_[A-Za-z0-9+/]{100,}={0,3}")),
    ("heroku-api-key", _p(r"\bHRKU-AA[0-9A-Za-z_-]{58}")),
    ("databricks-token", _p(r"\bdapi[a-f0-9]{32}(?:-\d)?\b")),
    ("clickhouse-secret", _p(r"\b4b1d[A-Za-z0-9]{38}\b")),
    ("planetscale-token", _p(r"\bpscale_(?:tkn|oauth|pw)_[\w=.\-]{32,64}")),
    ("pulumi-token", _p(r"\bpul-[a-f0-9]{40}\b")),
    ("scalingo-token", _p(r"\btk-us-[\w-]{48}")),
    ("doppler-token", _p(r"\bdp\.(?:pt|st|sa|ct|scim|audit)\.[A-Za-z0-9]{40,44}\b")),
    ("dynatrace-token", _p(r"\bdt0c01\.[A-Za-z0-9]{24}\.[A-Za-z0-9]{64}\b")),
    ("grafana-token", _p(r"\beyJrIjoi[A-Za-z0-9]{50,400}={0,3}|\bglc_[A-Za-z0-9+/]{32,400}={0,3}|\bglsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}\b")),
    ("new-relic-key", _p(r"\bNR(?:JS|II|AK)-[A-Za-z0-9\-]{19,32}\b")),
    ("sentry-token", _p(r"\bsntry[us]_[A-Za-z0-9+/=_]{40,}")),
    ("harness-token", _p(r"\b(?:pat|sat)\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9]{24}\.[A-Za-z0-9]{20}\b")),
    ("infracost-token", _p(r"\bico-[A-Za-z0-9]{32}\b")),
    ("prefect-token", _p(r"\bpnu_[A-Za-z0-9]{36}\b")),
    ("1password-secret-key", _p(r"\bA3-[A-Z0-9]{6}(?:-[A-Z0-9]{5,11}){4,5}\b")),
    ("1password-service-token", _p(r"\bops_eyJ[A-Za-z0-9+/]{100,}={0,3}")),
    ("age-secret-key", _p(r"\bAGE-SECRET-KEY-1[0-9A-Z]{58}\b")),
    # ---- code hosting, packages, CI -------------------------------------------------------
    ("github-token", _p(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b")),
    ("gitlab-token", _p(
        r"\bgl(?:pat|dt|rt|ptt|cbt|imt|oas|ft|soat|agent|ffct)-[A-Za-z0-9_\-]{20,}(?:\.[0-9a-z]{2,9})?" + _END
        + r"|\bGR1348941[\w-]{20}|_gitlab_session=[0-9a-z]{32}"
    )),
    ("npm-token", _p(r"\bnpm_[A-Za-z0-9]{36}\b")),
    ("pypi-token", _p(r"\bpypi-AgE[A-Za-z0-9_\-]{40,}")),
    ("rubygems-token", _p(r"\brubygems_[a-f0-9]{48}\b")),
    ("clojars-token", _p(r"(?i)\bCLOJARS_[a-z0-9]{60}\b")),
    ("artifactory-token", _p(r"\bAKCp[A-Za-z0-9]{60,}\b|\bcmVmd[A-Za-z0-9]{50,}\b|(?<![A-Za-z0-9])AP[0-9A-F](?=[A-Za-z]*\d)[A-Za-z0-9]{20,}\b")),
    ("sonar-token", _p(r"\bsq[upa]_[a-f0-9]{40}\b")),
    ("sourcegraph-token", _p(r"\bsgp_(?:[a-fA-F0-9]{16}_|local_)?[a-fA-F0-9]{40}\b")),
    ("readme-token", _p(r"\brdme_[a-z0-9]{70}\b")),
    ("linear-api-key", _p(r"\blin_api_[A-Za-z0-9]{40}\b")),
    ("notion-token", _p(r"\bntn_[0-9]{11}[A-Za-z0-9]{35}\b")),
    ("authress-key", _p(
        r"\b(?:sc|ext|scauth|authress)_[A-Za-z0-9]{5,30}\.[A-Za-z0-9]{4,6}\.acc[_-][A-Za-z0-9-]{10,32}\.[A-Za-z0-9+/_=-]{30,120}"
    )),
    ("octopus-deploy-key", _p(r"\bAPI-[A-Z0-9]{26}\b")),
    ("postman-token", _p(r"\bPMAK-[a-f0-9]{24}-[a-f0-9]{34}\b")),
    ("typeform-token", _p(r"\btfp_[A-Za-z0-9\-_.=]{59}")),
    ("frameio-token", _p(r"\bfio-u-[A-Za-z0-9\-_=]{64}")),
    ("defined-networking-key", _p(r"\bdnkey-[A-Za-z0-9=_\-]{26}-[A-Za-z0-9=_\-]{52}")),
    ("settlemint-token", _p(r"\bsm_[aps]at_[A-Za-z0-9]{16}\b")),
    ("maxmind-license-key", _p(r"\b[A-Za-z0-9]{6}_[A-Za-z0-9]{29}_mmk\b")),
    ("intra42-secret", _p(r"\bs-s4t2(?:ud|af)-[a-f0-9]{64}\b")),
    # ---- messaging, payments, SaaS --------------------------------------------------------
    ("slack-token", _p(r"\bxox(?:e\.xox)?[abposre]-(?:\d+-)?[A-Za-z0-9\-]{10,}|\bxapp-\d-[A-Z0-9]+-\d+-[a-z0-9]+")),
    ("slack-webhook", _p(r"(?:https?://)?hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9+/_\-]{20,}")),
    ("teams-webhook", _p(r"https://[a-z0-9]+\.webhook\.office\.com/webhookb2/[^\s\"'<>]+")),
    ("discord-bot-token", _p(r"\b[MNO][A-Za-z\d_-]{23,25}\.[A-Za-z\d_-]{6}\.[A-Za-z\d_-]{27,38}" + _END)),
    ("telegram-bot-token", _p(r"\b\d{5,16}:A[A-Za-z0-9_\-]{34}" + _END)),
    ("stripe-key", _p(r"\b(?:sk|rk)_(?:live|test|prod)_[A-Za-z0-9]{10,99}\b")),
    ("square-token", _p(r"\bsq0(?:atp|csp)-[\w-]{22,60}|\bEAAA[\w-]{22,60}" + _END)),
    ("facebook-token", _p(r"\bEAA[CM][A-Za-z0-9]{100,}|\b\d{15,16}(?:\||%7C)[0-9A-Za-z\-_]{27,40}" + _END)),
    ("twitter-bearer-token", _p(r"\bA{22}[A-Za-z0-9%]{80,100}")),
    ("shopify-token", _p(r"\bshp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}\b")),
    ("shippo-token", _p(r"\bshippo_(?:live|test)_[a-fA-F0-9]{40}\b")),
    ("easypost-token", _p(r"\bEZ[AT]K[A-Za-z0-9]{54}\b")),
    ("duffel-token", _p(r"\bduffel_(?:test|live)_[A-Za-z0-9_\-=]{43}")),
    ("flutterwave-key", _p(r"\bFLW(?:SECK|PUBK)(?:_TEST)?-[A-Za-z0-9]{12,32}(?:-X)?")),
    ("adobe-client-secret", _p(r"\bp8e-[A-Za-z0-9]{32}\b")),
    ("airtable-token", _p(r"\bpat[A-Za-z0-9]{14}\.[a-f0-9]{64}\b")),
    ("lob-api-key", _p(r"\b(?:live|test)_(?:pub_)?[a-f0-9]{31,35}\b")),
    ("mailchimp-key", _p(r"\b[0-9a-f]{32}-us\d{1,2}\b")),
    ("mailgun-key", _p(r"\b(?:pub)?key-[a-f0-9]{32}\b")),
    ("mapbox-token", _p(r"\b[pst]k\.[A-Za-z0-9]{60,}\.[A-Za-z0-9_\-]{22,}")),
    ("sendgrid-key", _p(r"\bSG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}\b")),
    ("sendinblue-key", _p(r"\bxkeysib-[a-f0-9]{64}-[A-Za-z0-9]{16}\b")),
    ("twilio-key", _p(r"\b(?:SK|AC)[0-9a-fA-F]{32}\b")),
    # ---- AI providers ---------------------------------------------------------------------
    ("anthropic-key", _p(r"\bsk-ant-[A-Za-z0-9]{2,8}-[A-Za-z0-9_\-]{20,}")),
    ("openai-key", _p(r"\bsk-(?:proj-|svcacct-|admin-|None-)?[A-Za-z0-9_\-]{20,}" + _END)),
    ("perplexity-key", _p(r"\bpplx-[A-Za-z0-9]{48}\b")),
    ("huggingface-token", _p(r"\bhf_[A-Za-z0-9]{30,}\b|\bapi_org_[A-Za-z]{34}\b")),
    # ---- generic shapes -------------------------------------------------------------------
    ("jwt", _p(r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}")),
    ("jwt-base64", _p(r"\bZXlK[A-Za-z0-9+/]{40,}={0,2}")),
    ("basic-auth", _p(r"(?i)(?<=authorization:\sbasic\s)[A-Za-z0-9+/]{12,}=*")),
)

#: Literals (lower case) at least one of which a text must contain for a format to be possible:
#: a substring test is far cheaper than a regular expression scan, and most texts hold none.
#: Formats missing here have no fixed literal and always run.
KEYWORDS: dict[str, tuple[str, ...]] = {
    "private-key": ("private key",), "putty-private-key": ("putty-user-key",), "private-key-base64": ("ls0tls1crudjt",),
    "aws-access-key-id": ("a3t", "akia", "asia", "abia", "acca", "agpa", "aida", "aipa", "anpa", "anva", "aroa", "apka"),
    "aws-secret-access-key": ("aws",), "aws-bedrock-key": ("absk", "bedrock-api-key-"),
    "netrc-password": ("machine",), "nuget-password": ("<add",), "curl-user-password": ("-u", "--user"),
    "authorization-header": ("authorization",), "bearer-token": ("bearer",), "url-password": ("://",),
    "npm-auth": ("_auth",), "softlayer-api-key": ("softlayer",), "sidekiq-credentials": ("contribsys__com",),
    "gcp-api-key": ("aiza",), "gcp-oauth-secret": ("gocspx-",), "gcp-oauth-token": ("ya29.",),
    "azure-storage-key": ("accountkey=",), "azure-sas-signature": ("sig=",), "azure-client-secret": ("q~",),
    "alibaba-access-key-id": ("ltai",), "digitalocean-token": ("_v1_",), "cloudflare-origin-ca-key": ("v1.0-",),
    "yandex-token": ("t1.", "aqvn"), "vault-token": ("hvs.", "hvb.", "s."), "terraform-cloud-token": (".atlasv1.",),
    "openshift-token": ("sha256~",), "flyio-token": ("fo1_", "fm1", "fm2"), "heroku-api-key": ("hrku-aa",),
    "databricks-token": ("dapi",), "clickhouse-secret": ("4b1d",), "planetscale-token": ("pscale_",),
    "pulumi-token": ("pul-",), "scalingo-token": ("tk-us-",), "doppler-token": ("dp.",), "dynatrace-token": ("dt0c01.",),
    "grafana-token": ("eyjrijoi", "glc_", "glsa_"), "new-relic-key": ("nrjs-", "nrii-", "nrak-"),
    "sentry-token": ("sntry",), "harness-token": ("pat.", "sat."), "infracost-token": ("ico-",), "prefect-token": ("pnu_",),
    "1password-secret-key": ("a3-",), "1password-service-token": ("ops_eyj",), "age-secret-key": ("age-secret-key-1",),
    "github-token": ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
    "gitlab-token": ("gl", "gr1348941", "_gitlab_session="), "npm-token": ("npm_",), "pypi-token": ("pypi-age",),
    "rubygems-token": ("rubygems_",), "clojars-token": ("clojars_",), "artifactory-token": ("akcp", "cmvmd", "ap"),
    "sonar-token": ("squ_", "sqp_", "sqa_"), "sourcegraph-token": ("sgp_",), "readme-token": ("rdme_",),
    "linear-api-key": ("lin_api_",), "notion-token": ("ntn_",), "authress-key": (".acc",), "octopus-deploy-key": ("api-",),
    "postman-token": ("pmak-",), "typeform-token": ("tfp_",), "frameio-token": ("fio-u-",),
    "defined-networking-key": ("dnkey-",), "settlemint-token": ("sm_",), "maxmind-license-key": ("_mmk",),
    "intra42-secret": ("s-s4t2",), "slack-token": ("xox", "xapp-"), "slack-webhook": ("hooks.slack.com",),
    "teams-webhook": ("webhook.office.com",), "telegram-bot-token": (":a",), "stripe-key": ("k_live_", "k_test_", "k_prod_"),
    "square-token": ("sq0", "eaaa"), "facebook-token": ("eaa", "|", "%7c"), "twitter-bearer-token": ("a" * 22,),
    "shopify-token": ("shp",), "shippo-token": ("shippo_",), "easypost-token": ("ezak", "eztk"), "duffel-token": ("duffel_",),
    "flutterwave-key": ("flwseck", "flwpubk"), "adobe-client-secret": ("p8e-",), "airtable-token": ("pat",),
    "lob-api-key": ("live_", "test_"), "mailchimp-key": ("-us",), "mailgun-key": ("key-",), "mapbox-token": ("k.",),
    "sendgrid-key": ("sg.",), "sendinblue-key": ("xkeysib-",), "twilio-key": ("sk", "ac"), "anthropic-key": ("sk-ant-",),
    "openai-key": ("sk-",), "perplexity-key": ("pplx-",), "huggingface-token": ("hf_", "api_org_"), "jwt": ("eyj",),
    "jwt-base64": ("zxlk",), "basic-auth": ("basic",),
}
