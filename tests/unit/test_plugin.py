"""`OpsreadyPlugin` gives a Temporal client opsready's converter and tracing, and keeps
what the caller configured on its own (a payload codec, other interceptors)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from temporalio.api.common.v1 import Payload
from temporalio.client import ClientConfig
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.contrib.pydantic import PydanticPayloadConverter, pydantic_data_converter
from temporalio.converter import DataConverter, PayloadCodec

from opsready.plugin import OpsreadyPlugin


class PassThroughCodec(PayloadCodec):
    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return list(payloads)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return list(payloads)


def configured(plugin: OpsreadyPlugin, **config: object) -> ClientConfig:
    return plugin.configure_client(ClientConfig(**config))


def test_a_client_gets_the_pydantic_converter_and_tracing() -> None:
    config = configured(OpsreadyPlugin(), data_converter=DataConverter.default, interceptors=[])
    assert config["data_converter"] is pydantic_data_converter
    assert [type(i) for i in config["interceptors"]] == [TracingInterceptor]


def test_tracing_can_be_left_out() -> None:
    config = configured(OpsreadyPlugin(tracing=False), interceptors=[])
    assert list(config["interceptors"]) == []


def test_a_payload_codec_the_caller_set_is_kept() -> None:
    codec = PassThroughCodec()
    mine = dataclasses.replace(DataConverter.default, payload_codec=codec)
    converter = configured(OpsreadyPlugin(), data_converter=mine)["data_converter"]
    assert converter.payload_codec is codec
    assert converter.payload_converter_class is PydanticPayloadConverter
