"""A small Graph API client for the Cloud API messages endpoint (aiohttp), with Graph's
errors turned into ours here, at the boundary."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import quote

import aiohttp

from omnidesk.errors import AuthError, PermanentError, TooLarge, TransientError

# Graph error codes that mean "later": throttling and temporary unavailability.
_TRANSIENT_CODES = {1, 2, 4, 17, 32, 613, 80007, 130429, 131000, 131016, 131048, 131056}
_AUTH_CODES = {190, 102, 10, 200}


class GraphClient:
    def __init__(self, base: str, version: str, token: str, timeout: float) -> None:
        self.base = f"{base.rstrip('/')}/{version}"
        self.token = token
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def session(self) -> aiohttp.ClientSession:
        """One session per event loop (replies may be sent from the daemon's loop or a
        worker's); a session is never used from a loop other than its own."""
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
            self._loop = loop
        return self._session

    async def close(self) -> None:
        session = self._session
        if session is not None and not session.closed and self._loop is asyncio.get_running_loop():
            await session.close()
        self._session = None

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self._call("POST", path, body)

    async def get(self, path: str) -> dict[str, Any]:
        return await self._call("GET", path, None)

    async def media(self, media_id: str, max_bytes: int) -> bytes:
        """A file a customer sent: its record (GET /<media id>) names a short-lived URL,
        fetched with the same token. TooLarge past `max_bytes`, checked on the size the
        record gives and again while reading."""
        record = await self.get(quote(media_id, safe=""))
        url, size = record.get("url"), record.get("file_size")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise PermanentError(f"WhatsApp Graph: media {media_id[:40]!r} has no URL")
        if isinstance(size, int) and size > max_bytes:
            raise TooLarge(f"the file is {size} bytes, over {max_bytes}")
        headers = {"Authorization": f"Bearer {self.token}"}
        try:
            async with self.session().get(url, headers=headers) as resp:
                if resp.status != 200:
                    raw = await resp.read()
                    try:
                        data = json.loads(raw) if raw else {}
                    except ValueError:
                        data = {}
                    raise graph_error(resp.status, data, resp.headers.get("Retry-After"))
                chunks, got = [], 0
                async for chunk in resp.content.iter_chunked(64 * 1024):
                    got += len(chunk)
                    if got > max_bytes:
                        raise TooLarge(f"the file is over {max_bytes} bytes")
                    chunks.append(chunk)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransientError(f"WhatsApp Graph: {type(exc).__name__}: {exc}") from None
        return b"".join(chunks)

    async def _call(self, method: str, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        url = f"{self.base}/{path.lstrip('/')}"
        headers = {"Authorization": f"Bearer {self.token}"}
        try:
            async with self.session().request(method, url, json=body, headers=headers) as resp:
                raw = await resp.read()
                status = resp.status
                retry_after = resp.headers.get("Retry-After")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransientError(f"WhatsApp Graph: {type(exc).__name__}: {exc}") from None
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            data = {}
        if 200 <= status < 300 and isinstance(data, dict) and "error" not in data:
            return data
        raise graph_error(status, data, retry_after)


def graph_error(status: int, data: Any, retry_after: str | None = None) -> Exception:
    """The Graph error as ours: 429/5xx and throttling codes are transient, 401 and token
    codes are auth, the rest permanent with Graph's own message."""
    error = data.get("error") if isinstance(data, dict) else None
    error = error if isinstance(error, dict) else {}
    code = error.get("code")
    message = str(error.get("message") or f"HTTP {status}")
    details = (error.get("error_data") or {}).get("details") if isinstance(error, dict) else None
    text = f"WhatsApp Graph: {message}" + (f" ({details})" if details else "")
    text += f" [HTTP {status}" + (f", code {code}]" if code is not None else "]")
    if status == 401 or code in _AUTH_CODES:
        return AuthError(text)
    if status == 429 or status >= 500 or code in _TRANSIENT_CODES:
        wait = float(retry_after) if retry_after and retry_after.isdigit() else None
        return TransientError(text, retry_after=wait)
    return PermanentError(text)
