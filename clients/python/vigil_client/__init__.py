"""A tiny client for Vigil's ingest protocol (docs/sdk-protocol.md).

Agents that call models without going through Vigil's gateway report each call here; Vigil
stores it as a vital and its immune system judges it like a gateway call. Only the Python
standard library is used.

    from vigil_client import VigilClient

    with VigilClient("http://127.0.0.1:8080", api_key="vgl_...", agent_id="billing-agent") as vigil:
        vigil.record(latency_ms=812, input_tokens=1200, output_tokens=310, model="gpt-4o",
                     tool_names=["search"], cost_usd=0.0041, input_text=user_message)

Calls are buffered and sent in batches (``batch_size``, or every ``flush_interval``
seconds from a background thread). A batch that fails for a transient reason (connection
error, 429, 5xx) is retried with exponential backoff, honouring ``Retry-After``; items Vigil
rejects are reported to ``on_error`` and not retried. The buffer is bounded: when it is full
the oldest calls are dropped and counted in ``stats["dropped"]``.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Optional

__all__ = ["VigilClient", "VigilError"]
__version__ = "0.1.0"

# Vigil takes at most 10,000 items per batch.
BATCH_MAX = 10_000
_TRANSIENT = {429, 500, 502, 503, 504}


class VigilError(Exception):
    """A batch Vigil refused as a whole (bad key, malformed request)."""

    def __init__(self, status: int, body: Any):
        super().__init__(f"Vigil answered {status}: {body}")
        self.status = status
        self.body = body


class VigilClient:
    def __init__(
        self,
        base_url: str,
        api_key: Optional[str] = None,
        agent_id: Optional[str] = None,
        *,
        batch_size: int = 100,
        flush_interval: float = 2.0,
        max_buffer: int = 10_000,
        max_retries: int = 5,
        backoff: float = 0.5,
        timeout: float = 10.0,
        on_error: Optional[Callable[[Exception | dict], None]] = None,
        background: bool = True,
    ):
        if not 1 <= batch_size <= BATCH_MAX:
            raise ValueError(f"batch_size must be between 1 and {BATCH_MAX}")
        self._url = base_url.rstrip("/") + "/api/v1/ingest"
        self._api_key = api_key
        self._agent_id = agent_id
        self._batch_size = batch_size
        self._max_retries = max_retries
        self._backoff = backoff
        self._timeout = timeout
        self._on_error = on_error
        self._buffer: deque = deque(maxlen=max_buffer)
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self.stats = {"recorded": 0, "sent": 0, "accepted": 0, "rejected": 0, "dropped": 0, "retries": 0, "failed": 0}
        self._stop = threading.Event()
        self._thread = None
        if background:
            self._thread = threading.Thread(target=self._run, args=(flush_interval,), daemon=True, name="vigil-client")
            self._thread.start()

    def record(
        self,
        latency_ms: float,
        *,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cached_tokens: int = 0,
        reasoning_tokens: int = 0,
        model: Optional[str] = None,
        provider: Optional[str] = None,
        tool_names: Iterable[str] = (),
        tool_calls: Optional[int] = None,
        cost_usd: Optional[float] = None,
        retries: int = 0,
        error: Optional[str] = None,
        system_prompt: Optional[str] = None,
        input_text: Optional[str] = None,
        agent_id: Optional[str] = None,
        feature: Optional[str] = None,
        user: Optional[str] = None,
        at: Optional[datetime] = None,
    ) -> None:
        """Buffers one model call. ``system_prompt`` is hashed here (only its sha256 is
        sent); ``input_text`` (the newest user message or tool output, up to 8 KiB) is sent
        for the prompt-injection scan and never stored by Vigil."""
        agent = agent_id or self._agent_id
        if not agent:
            raise ValueError("an agent_id is needed, here or in the client")
        tools = list(tool_names)
        item: dict = {"agent_id": agent, "latency_ms": float(latency_ms), "at": _rfc3339(at)}
        for key, value in (
            ("input_tokens", input_tokens), ("output_tokens", output_tokens), ("cached_tokens", cached_tokens),
            ("reasoning_tokens", reasoning_tokens), ("retries", retries),
        ):
            if value:
                item[key] = int(value)
        for key, value in (("model", model), ("provider", provider), ("error", error), ("feature", feature),
                           ("user", user), ("cost_usd", cost_usd)):
            if value is not None:
                item[key] = value
        if tools:
            item["tool_names"] = tools
        if tool_calls is not None:
            item["tool_calls"] = int(tool_calls)
        if system_prompt is not None:
            item["system_prompt_sha256"] = hashlib.sha256(system_prompt.encode("utf-8")).hexdigest()
        if input_text:
            item["input_text"] = input_text.encode("utf-8")[:8192].decode("utf-8", "ignore")
        with self._lock:
            if len(self._buffer) == self._buffer.maxlen:
                self.stats["dropped"] += 1
            self._buffer.append(item)
            self.stats["recorded"] += 1
            full = len(self._buffer) >= self._batch_size
        if full and self._thread is None:
            self.flush()

    def flush(self) -> None:
        """Sends everything buffered, batch by batch."""
        with self._send_lock:
            while True:
                with self._lock:
                    batch = [self._buffer.popleft() for _ in range(min(self._batch_size, len(self._buffer)))]
                if not batch:
                    return
                self._send(batch)

    def close(self) -> None:
        """Stops the background thread and sends what is left."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self._timeout)
        self.flush()

    def __enter__(self) -> "VigilClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _run(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.flush()
            except Exception as e:  # never let the reporting thread die
                self._report(e)

    def _send(self, batch: list) -> None:
        body = json.dumps({"vitals": batch}).encode("utf-8")
        headers = {"Content-Type": "application/json", "User-Agent": f"vigil-client-python/{__version__}"}
        if self._api_key:
            headers["X-API-Key"] = self._api_key
        for attempt in range(self._max_retries + 1):
            request = urllib.request.Request(self._url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self._timeout) as response:
                    answer = json.loads(response.read() or b"{}").get("data", {})
                self.stats["sent"] += len(batch)
                self.stats["accepted"] += answer.get("accepted", 0)
                self.stats["rejected"] += answer.get("rejected", 0)
                if answer.get("rejected"):
                    self._report({"rejected": answer["rejected"], "errors": answer.get("errors", [])})
                return
            except urllib.error.HTTPError as e:
                status, retry_after = e.code, e.headers.get("Retry-After")
                payload = _json_or_text(e.read())
                if status not in _TRANSIENT:
                    self.stats["failed"] += len(batch)
                    if status == 422:
                        self.stats["rejected"] += len(batch)
                    self._report(VigilError(status, payload))
                    return
            except (urllib.error.URLError, OSError) as e:
                retry_after, payload = None, str(e)
            if attempt == self._max_retries:
                break
            self.stats["retries"] += 1
            time.sleep(_delay(attempt, self._backoff, retry_after))
        self.stats["failed"] += len(batch)
        self._report(VigilError(0, f"gave up after {self._max_retries} retries: {payload}"))

    def _report(self, problem) -> None:
        if self._on_error is not None:
            self._on_error(problem)


def _delay(attempt: int, backoff: float, retry_after: Optional[str]) -> float:
    if retry_after:
        try:
            return min(max(float(retry_after), 0.0), 60.0)
        except ValueError:
            pass
    return min(backoff * (2 ** attempt), 30.0) * (0.5 + random.random() / 2)


def _rfc3339(at: Optional[datetime]) -> str:
    at = at or datetime.now(timezone.utc)
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    return at.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _json_or_text(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")
