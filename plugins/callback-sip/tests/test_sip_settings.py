"""Tests for the [dialers.sip] table: defaults, checks and how numbers are dialled."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from callback.errors import ConfigError
from callback_sip.settings import load_settings


def test_a_server_alone_is_enough_and_defaults_suit_a_g711_trunk() -> None:
    settings = load_settings({"server": "trunk.example.gov.cn:5060"})

    assert settings.transport == "udp"
    assert settings.codecs == ("PCMA", "PCMU")
    assert settings.ring_timeout == 30
    assert settings.identity_domain == "trunk.example.gov.cn"
    assert settings.registrar_uri == "sip:trunk.example.gov.cn:5060"
    assert settings.pjsua_max_calls == settings.max_concurrent + 4


def test_the_password_is_kept_out_of_the_repr() -> None:
    settings = load_settings({"server": "pbx", "username": "8001", "password": "s3cret"})

    assert "s3cret" not in repr(settings)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({}, "'server' is required"),
        ({"server": "pbx", "colour": "red"}, "unknown setting"),
        ({"server": "pbx", "transport": "tls"}, "'transport'"),
        ({"server": "pbx", "sip_port": "5060"}, "'sip_port' must be a whole number"),
        ({"server": "pbx", "register": True}, "needs 'username'"),
        ({"server": "pbx", "username": "8001"}, "go together"),
        ({"server": "pbx", "max_concurrent": 40}, "'max_concurrent'"),
        ({"server": "pbx", "codecs": []}, "at least one codec"),
        ({"server": "pbx", "number_format": "local"}, "'number_format'"),
        ({"server": "pbx", "outbound_proxy": "proxy.example"}, "SIP URI"),
        ({"server": "pbx", "dial_prefix": "9-"}, "'dial_prefix'"),
        ({"server": "pbx with spaces"}, "'server'"),
        ({"server": "pbx", "barge_in": "yes"}, "true or false"),
    ],
)
def test_a_bad_table_is_a_config_error_naming_the_setting(
    table: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=r"\[dialers\.sip\]") as error:
        load_settings(table)
    assert message in str(error.value)


@pytest.mark.parametrize(
    ("settings", "number", "uri"),
    [
        ({}, "+8613812345678", "sip:+8613812345678@pbx:5060"),
        ({"number_format": "national"}, "+8613812345678", "sip:13812345678@pbx:5060"),
        ({"number_format": "national"}, "+8657187654321", "sip:057187654321@pbx:5060"),
        ({"dial_prefix": "9", "number_format": "national"}, "+8613812345678",
         "sip:913812345678@pbx:5060"),
        ({"transport": "tcp"}, "+8613812345678", "sip:+8613812345678@pbx:5060;transport=tcp"),
    ],
)  # fmt: skip
def test_numbers_are_dialled_in_the_configured_format(
    settings: dict[str, Any], number: str, uri: str
) -> None:
    assert load_settings({"server": "pbx:5060", **settings}).target_uri(number) == uri


def test_a_number_that_is_not_e164_cannot_be_dialled() -> None:
    settings = load_settings({"server": "pbx"})

    with pytest.raises(ValueError, match="not an E.164 number"):
        settings.target_uri("not a number")


def test_paths_expand_the_home_directory_and_codecs_may_be_one_string() -> None:
    settings = load_settings({"server": "pbx", "prompt_cache": "~/prompts", "codecs": "PCMA, G722"})

    assert settings.prompt_cache == Path.home() / "prompts"
    assert settings.codecs == ("PCMA", "G722")
