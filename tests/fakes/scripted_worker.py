"""A real worker process (all of opsready's workflows and activities) whose model is the
scripted one, the script chosen by the first word of the run's message:

- `answer ...`: answers at once;
- `tool-error ...`: looks up an order that does not exist (the tool answers with an
  error), then answers;
- `unsafe ...`: calls a tool that does not exist (a safety event), then answers;
- `fail ...`: the model refuses the request for good (the run fails).

    python -m tests.fakes.scripted_worker --address HOST:PORT --task-queue Q \
        --data-dir D --agents-dir A
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError

from activities.tools.support import support_tools
from opsready.settings import PROJECT_ROOT, Settings
from tests.fakes.scripted import Script, ScriptedProvider, answer, calls, tool_messages
from workers.app import build_activities, build_worker
from workflows.contract import ErrorType
from workflows.payloads import ChatMessage, ModelCallInput, ModelCallResult


def _then_answer(first: ChatMessage) -> Script:
    def script(request: ModelCallInput) -> ChatMessage:
        return first if not tool_messages(request) else answer("done")

    return script


SCRIPTS: dict[str, Script] = {
    "answer": lambda request: answer("done"),
    "tool-error": _then_answer(calls(1, ("lookup_order", {"order_id": "A-9999"}))),
    "unsafe": _then_answer(calls(1, ("no_such_tool", {}))),
}


class FirstWordScripts(ScriptedProvider):
    def __init__(self) -> None:
        super().__init__({})

    async def complete(self, request: ModelCallInput) -> ModelCallResult:
        user = next((m.content for m in request.messages if m.role == "user"), None) or ""
        word = user.split(" ", 1)[0]
        if word not in SCRIPTS:
            raise ApplicationError(
                f"scripted refusal of {user!r}",
                type=ErrorType.MODEL_REQUEST_REJECTED,
                non_retryable=True,
            )
        self.scripts[user] = SCRIPTS[word]
        return await super().complete(request)


async def main() -> None:
    parser = argparse.ArgumentParser()
    for flag in ("--address", "--task-queue", "--data-dir", "--agents-dir"):
        parser.add_argument(flag, required=True)
    args = parser.parse_args()
    settings = Settings(
        task_queue=args.task_queue,
        data_dir=Path(args.data_dir),
        agents_dir=Path(args.agents_dir),
        worker_versioning=False,
    )
    client = await Client.connect(args.address, data_converter=pydantic_data_converter)
    activities = build_activities(
        settings,
        providers={"scripted": FirstWordScripts()},
        tools=support_tools(PROJECT_ROOT / "agents" / "data" / "support-triage"),
    )
    async with build_worker(client, settings, activities=activities):
        print("ready", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
