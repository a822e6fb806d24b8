"""Signed evidence URLs: a chat UI shows a cited image or page region by its URL, and
cannot send the API key with it (Markdown images and links are fetched by the browser).

With ``api.keys`` set, the chat API's citation URLs carry ``tenant``, ``expires`` and
``signature`` (HMAC-SHA256 of the method, path, other query parameters, tenant and
expiry) and are valid for ``api.signed_url_ttl_s``. A GET presenting such a signature
acts as a read key of that tenant for that one URL: it opens nothing else, a changed
path or parameter fails the check, and so does any other method.

The secret is ``api.url_secret``, or else one derived from the configured keys, so
replicas that share their keys accept each other's URLs and replacing the keys revokes
every URL signed with them.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import parse_qsl, urlencode, urlsplit

from fastapi import HTTPException, Request

from mmrag.settings import ApiSettings

SIGNATURE_PARAMETERS = ("tenant", "expires", "signature")


def url_secret(api: ApiSettings) -> bytes | None:
    """The signing secret; None for an API without keys (its URLs need no signature)."""
    if not api.keys:
        return None
    if api.url_secret is not None:
        return api.url_secret.get_secret_value().encode()
    keys = sorted(key.key.get_secret_value() for key in api.keys)
    return hashlib.sha256("\0".join(["mmrag evidence URLs", *keys]).encode()).digest()


def _signature(secret: bytes, path: str, query: str, tenant: str, expires: int) -> str:
    message = "\n".join(["GET", path, query, tenant, str(expires)]).encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def _canonical(parameters: list[tuple[str, str]]) -> str:
    """The query parameters other than the signature's own, in a fixed order."""
    return urlencode(sorted((k, v) for k, v in parameters if k not in SIGNATURE_PARAMETERS))


def sign(url: str, *, tenant: str, api: ApiSettings, now: float | None = None) -> str:
    """``url`` (a path with an optional query) with a signature for ``tenant``; unchanged
    when the API has no keys."""
    secret = url_secret(api)
    if secret is None:
        return url
    parts = urlsplit(url)
    expires = int((time.time() if now is None else now) + api.signed_url_ttl_s)
    query = _canonical(parse_qsl(parts.query, keep_blank_values=True))
    signature = _signature(secret, parts.path, query, tenant, expires)
    signed = urlencode({"tenant": tenant, "expires": expires, "signature": signature})
    return f"{parts.path}?{query + '&' if query else ''}{signed}"


def signed_tenant(request: Request, api: ApiSettings) -> str | None:
    """The tenant a request's URL signature grants; None when it carries none. A present
    but invalid, expired or misused signature is refused (401)."""
    given = request.query_params.get("signature")
    if given is None:
        return None
    secret = url_secret(api)
    tenant = request.query_params.get("tenant", "")
    expires_text = request.query_params.get("expires", "")
    if secret is None or request.method not in ("GET", "HEAD") or not expires_text.isdigit():
        raise HTTPException(401, "invalid URL signature")
    query = _canonical(list(request.query_params.multi_items()))
    expected = _signature(secret, request.url.path, query, tenant, int(expires_text))
    if not hmac.compare_digest(given, expected):
        raise HTTPException(401, "invalid URL signature")
    if int(expires_text) < time.time():
        raise HTTPException(401, "this signed URL has expired; ask again for a fresh one")
    return tenant
