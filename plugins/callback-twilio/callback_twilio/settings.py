"""The ``[dialers.twilio]`` table of callback.toml, read and checked once."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from callback.errors import ConfigError

#: Twilio's Amazon Polly Mandarin voice. Twilio's basic voices (man, woman) speak no Chinese,
#: so leaving ``voice`` unset would read Mandarin text with an English voice
#: (https://www.twilio.com/docs/voice/twiml/say/text-speech).
DEFAULT_VOICE = "Polly.Zhiyu"

#: What ``machine_detection`` may be: Twilio's two modes, or "off".
#: "Enable" decides as soon as it can (human, machine_start, fax, unknown), which is all a
#: survey needs; "DetectMessageEnd" waits for the voicemail beep, only useful to leave a message.
MACHINE_DETECTION_MODES = ("Enable", "DetectMessageEnd", "off")

#: Twilio lets a call ring at most 600 seconds (Calls resource, ``Timeout``).
MAX_RING_TIMEOUT = 600


@dataclass(frozen=True)
class TwilioSettings:
    """Everything the Twilio dialer needs, validated; build with ``from_mapping``."""

    account_sid: str
    #: Checks webhooks, even when REST calls use an API key: Twilio signs them with the
    #: account's auth token, never with an API key secret, unless a Webhook Rule signs them
    #: with a shared key of ``webhook_keys``. None only with both an API key and shared keys:
    #: the account's master credential then need not be on this server at all.
    auth_token: str | None
    #: Caller id, E.164; must be a Twilio number or a verified caller id of the account.
    from_number: str
    #: Where Twilio reaches our webhooks, as Twilio sees it (the proxy's public URL).
    public_base_url: str
    api_key: str | None = None
    api_secret: str | None = None
    ring_timeout: int = 60
    machine_detection: str = "Enable"
    machine_detection_timeout: int | None = None
    calls_per_second: float = 1.0
    max_concurrent: int = 10
    voice: str = DEFAULT_VOICE
    #: Language of Gather's speech recognition for each Turn language; Twilio's recogniser
    #: wants its own codes (Google's), e.g. cmn-Hans-CN for Mandarin as written in China.
    speech_languages: Mapping[str, str] | None = None
    #: A recorded prompt's local path under ``audio_root`` is played from ``audio_base_url``.
    audio_root: str | None = None
    audio_base_url: str | None = None
    #: Waits before an extension is keyed, in Twilio's ``w`` (half a second each).
    extension_pause: str = "ww"
    #: Tests only: where the REST API is (a local fake); None means Twilio itself.
    api_base_url: str | None = None
    region: str | None = None
    edge: str | None = None
    #: Seconds to wait for Twilio's REST API; the library's default is to wait for ever.
    http_timeout: float = 10.0
    #: Secrets of the shared keys a Webhook Rule signs our webhooks with, by key id (the old
    #: key and the new one while a key is rotated). Secrets: keep them in the environment
    #: (TWILIO_WEBHOOK_KEYS, a JSON object) rather than in callback.toml.
    webhook_keys: Mapping[str, str] | None = None

    @classmethod
    def from_mapping(
        cls, table: Mapping[str, Any], environ: Mapping[str, str] | None = None
    ) -> TwilioSettings:
        """Read ``[dialers.twilio]``; secrets may come from Twilio's usual environment variables.

        ``TWILIO_ACCOUNT_SID``, ``TWILIO_AUTH_TOKEN``, ``TWILIO_API_KEY``,
        ``TWILIO_API_SECRET`` and ``TWILIO_WEBHOOK_KEYS`` fill what the table leaves out, so
        secrets need not be written into callback.toml. Raises ``ConfigError`` naming the
        setting that is wrong.
        """
        env = os.environ if environ is None else environ
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(table) - known)
        if unknown:
            raise ConfigError(f"[dialers.twilio]: unknown setting(s) {', '.join(unknown)}")

        def text(name: str, env_name: str | None = None) -> str | None:
            value = table.get(name)
            if value is None and env_name:
                value = env.get(env_name)
            if value is None or value == "":
                return None
            if not isinstance(value, str):
                raise ConfigError(f"[dialers.twilio] {name}: expected text, got {value!r}")
            return value

        def required(name: str, env_name: str | None = None) -> str:
            value = text(name, env_name)
            if value is None:
                hint = f" (or set {env_name})" if env_name else ""
                raise ConfigError(f"[dialers.twilio] {name} is required{hint}")
            return value

        def number(name: str, default: float, minimum: float, maximum: float) -> float:
            value = table.get(name, default)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"[dialers.twilio] {name}: expected a number, got {value!r}")
            if not minimum <= value <= maximum:
                raise ConfigError(
                    f"[dialers.twilio] {name}: {value} is outside {minimum:g}..{maximum:g}"
                )
            return value

        account_sid = required("account_sid", "TWILIO_ACCOUNT_SID")
        if not account_sid.startswith("AC"):
            raise ConfigError("[dialers.twilio] account_sid: an account SID starts with AC")
        public_base_url = required("public_base_url").rstrip("/")
        if not public_base_url.startswith(("https://", "http://")):
            raise ConfigError("[dialers.twilio] public_base_url: expected an http(s) URL")
        api_key = text("api_key", "TWILIO_API_KEY")
        api_secret = text("api_secret", "TWILIO_API_SECRET")
        if (api_key is None) != (api_secret is None):
            raise ConfigError("[dialers.twilio] api_key and api_secret go together")
        mode = table.get("machine_detection", "Enable")
        if mode is False:
            mode = "off"
        if mode not in MACHINE_DETECTION_MODES:
            raise ConfigError(
                f"[dialers.twilio] machine_detection: {mode!r} is not one of "
                + ", ".join(MACHINE_DETECTION_MODES)
            )
        amd_timeout = table.get("machine_detection_timeout")
        if amd_timeout is not None:
            # Twilio accepts 3..59 seconds (Calls resource, MachineDetectionTimeout).
            amd_timeout = int(number("machine_detection_timeout", 30, 3, 59))
        speech_languages = table.get("speech_languages")
        if speech_languages is not None and not isinstance(speech_languages, Mapping):
            raise ConfigError("[dialers.twilio] speech_languages: expected a table")
        audio_root = text("audio_root")
        audio_base_url = text("audio_base_url")
        if (audio_root is None) != (audio_base_url is None):
            raise ConfigError("[dialers.twilio] audio_root and audio_base_url go together")
        extension_pause = table.get("extension_pause", "ww")
        if not isinstance(extension_pause, str) or set(extension_pause) - {"w"}:
            raise ConfigError("[dialers.twilio] extension_pause: only 'w' characters")
        api_base_url = text("api_base_url")
        webhook_keys = _webhook_keys(table.get("webhook_keys"), env.get("TWILIO_WEBHOOK_KEYS"))
        auth_token = text("auth_token", "TWILIO_AUTH_TOKEN")
        if auth_token is None and not (api_key and webhook_keys):
            raise ConfigError(
                "[dialers.twilio] auth_token is required (or set TWILIO_AUTH_TOKEN); it may be "
                "left out only when api_key signs the REST calls and webhook_keys the webhooks"
            )
        return cls(
            account_sid=account_sid,
            auth_token=auth_token,
            from_number=required("from_number"),
            public_base_url=public_base_url,
            api_key=api_key,
            api_secret=api_secret,
            ring_timeout=int(number("ring_timeout", 60, 5, MAX_RING_TIMEOUT)),
            machine_detection=mode,
            machine_detection_timeout=amd_timeout,
            calls_per_second=float(number("calls_per_second", 1.0, 0.01, 1000)),
            max_concurrent=int(number("max_concurrent", 10, 1, 100_000)),
            voice=text("voice") or DEFAULT_VOICE,
            speech_languages=speech_languages,
            audio_root=audio_root,
            audio_base_url=audio_base_url.rstrip("/") if audio_base_url else None,
            extension_pause=extension_pause,
            api_base_url=api_base_url.rstrip("/") if api_base_url else None,
            region=text("region"),
            edge=text("edge"),
            http_timeout=float(number("http_timeout", 10.0, 0.1, 600)),
            webhook_keys=webhook_keys,
        )

    def webhook_url(self, kind: str, attempt_id: int, query: str = "") -> str:
        """Return the public URL of one of our webhooks: voice, gather, status or amd;
        ``query`` (already encoded, e.g. ``NO_DETECTION``) is added after a ``?``."""
        url = f"{self.public_base_url}/twilio/{kind}/{attempt_id}"
        return f"{url}?{query}" if query else url


def _webhook_keys(table: Any, environ: str | None) -> dict[str, str] | None:
    """The shared keys' secrets by key id: the table, else the environment's JSON object."""
    where = "[dialers.twilio] webhook_keys"
    if table is None and environ:
        where = "TWILIO_WEBHOOK_KEYS"
        try:
            table = json.loads(environ)
        except ValueError as exc:
            raise ConfigError(f"{where}: not a JSON object of key id to secret: {exc}") from None
    if table is None:
        return None
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where}: expected a table of key id = secret")
    for key, secret in table.items():
        if not isinstance(key, str) or not key or not isinstance(secret, str) or not secret:
            raise ConfigError(f"{where}: {key!r}: expected a key id with its secret as text")
    return dict(table) or None
