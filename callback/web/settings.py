"""The ``[web]`` table of callback.toml: what ``callback serve`` listens on and signs against."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from callback.config import Settings
from callback.errors import ConfigError

#: Passed by ``callback serve`` to its worker processes (uvicorn starts them afresh).
PUBLIC_BASE_URL_ENV = "CALLBACK_WEB_PUBLIC_BASE_URL"


@dataclass(frozen=True)
class WebSettings:
    """``[web]``: ``public_base_url``, and defaults for ``callback serve``'s options."""

    #: The URL at which Twilio reaches us, as Twilio sees it (the proxy's public URL), used to
    #: check signatures. None: the dialer's own ``public_base_url``.
    public_base_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1

    @classmethod
    def from_settings(
        cls, settings: Settings, environ: Mapping[str, str] | None = None
    ) -> WebSettings:
        """Read ``[web]``; ``CALLBACK_WEB_PUBLIC_BASE_URL`` overrides its public_base_url."""
        table: Mapping[str, Any] = settings.section("web")
        unknown = sorted(set(table) - {"public_base_url", "host", "port", "workers"})
        if unknown:
            # A misspelt public_base_url would otherwise fail every signature, silently.
            raise ConfigError(f"[web]: unknown setting(s) {', '.join(unknown)}")
        base = (environ or {}).get(PUBLIC_BASE_URL_ENV) or table.get("public_base_url")
        if base is not None:
            if not isinstance(base, str) or not base.startswith(("https://", "http://")):
                raise ConfigError(f"[web] public_base_url: expected an http(s) URL, not {base!r}")
            base = base.rstrip("/")
        host = table.get("host", cls.host)
        if not isinstance(host, str) or not host:
            raise ConfigError(f"[web] host: expected an address, not {host!r}")
        return cls(
            public_base_url=base or None,
            host=host,
            port=_integer(table, "port", cls.port, 0, 65535),
            workers=_integer(table, "workers", cls.workers, 1, 256),
        )


def _integer(table: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = table.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"[web] {name}: expected a whole number in {low}..{high}, not {value!r}")
    return value
