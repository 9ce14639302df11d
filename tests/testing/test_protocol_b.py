"""Event contracts against protocol B, a real server with another protocol (events named
by ``event``, runs by ``job``): a contract configured only by field names catches the
same faults as `AGENT_EVENTS` does on the reference server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from protocol_b import ProtocolBServer, plan_job

from pytest_ws_resilience.client.client import WsClient
from pytest_ws_resilience.client.tokens import TestUser, TokenFactory
from pytest_ws_resilience.config.settings import WsSettings
from pytest_ws_resilience.contracts.contract import EventContract
from pytest_ws_resilience.errors import ContractViolationError, WsAuthError
from pytest_ws_resilience.testing.vocabulary import AGENT_EVENTS

WAIT_S = 5.0
JOBS = EventContract(
    events=("job.accepted", "job.progress", "job.result"),
    field="event",
    correlation="job",
    repeatable={"job.progress"},
    name="JOBS",
)
SETTINGS = WsSettings(auth_query_param="access")


@pytest.fixture
def tokens() -> TokenFactory:
    return TokenFactory()


@pytest_asyncio.fixture(loop_scope="function")
async def server(tokens: TokenFactory) -> AsyncIterator[ProtocolBServer]:
    assert tokens.secret is not None
    async with ProtocolBServer(tokens.secret) as running:
        yield running


def b_client(server: ProtocolBServer, user: TestUser) -> WsClient:
    return WsClient(server.url, user=user, auth="query", settings=SETTINGS)


@pytest_asyncio.fixture(loop_scope="function")
async def client(server: ProtocolBServer, tokens: TokenFactory) -> AsyncIterator[WsClient]:
    async with b_client(server, tokens.user()) as connected:
        yield connected


async def ask(client: WsClient, prompt: str, job: str | None = None) -> None:
    message = {"op": "ask", "prompt": prompt}
    if job is not None:
        message["job"] = job
    await client.send_json(message)


# -- the server itself ---------------------------------------------------------------


@pytest.mark.asyncio
async def test_server_greets_by_account_and_refuses_bad_access_tokens(
    server: ProtocolBServer, tokens: TokenFactory
) -> None:
    user = tokens.user()
    async with b_client(server, user) as client:
        hello = await client.expect(kind="hello", timeout=WAIT_S)
        assert hello["account"] == user.id and hello["n"] == 1
    for token in (tokens.wrong_key(user), tokens.expired(user), tokens.malformed()):
        refused = WsClient(server.url, token=token, auth="query", settings=SETTINGS)
        with pytest.raises(WsAuthError, match="HTTP 401"):
            await refused.connect()


def test_faults_shape_the_job_plan() -> None:
    def names(*faults: str, steps: int = 2) -> list[str]:
        plan = plan_job("j", "acct", "p", progress_steps=steps, faults=frozenset(faults))
        return [event["event"] for event in plan]

    assert names() == ["job.accepted", "job.progress", "job.progress", "job.result"]
    assert names("drop") == ["job.accepted", "job.progress", "job.result"]
    assert names("reorder") == ["job.progress", "job.accepted", "job.progress", "job.result"]
    assert names("duplicate") == ["job.accepted", "job.accepted", "job.progress",
                                  "job.progress", "job.result"]  # fmt: skip
    with pytest.raises(ValueError, match="unknown protocol B fault"):
        ProtocolBServer("secret-key", faults=("drop_event",))


# -- contracts -----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_clean_jobs_pass_one_after_another(client: WsClient) -> None:
    jobs = []
    for number in range(3):
        await ask(client, f"prompt {number}")
        result = await client.expect_contract(JOBS, timeout=WAIT_S)
        assert result.ok, result.transcript()
        assert result.observed[-1].event["answer"] == f"echo: prompt {number}"
        jobs.append(result.run)
    assert len(set(jobs)) == 3


@pytest.mark.asyncio
async def test_repeated_progress_and_interleaved_jobs_pass(tokens: TokenFactory) -> None:
    assert tokens.secret is not None
    async with (
        ProtocolBServer(tokens.secret, progress_steps=3) as server,
        b_client(server, tokens.user()) as client,
    ):
        await ask(client, "one", job="job-1")
        await ask(client, "two", job="job-2")
        await client.send_json({"op": "ping"})
        two = await client.expect_contract(JOBS, correlation="job-2", timeout=WAIT_S)
        one = await client.expect_contract(JOBS, correlation="job-1", timeout=WAIT_S)
    assert one.ok and two.ok
    assert "job.progress x3" in one.transcript()
    assert {o.event["job"] for o in one.observed} == {"job-1"}


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("fault", "kind", "event", "marked_line"),
    [
        ("drop", "missing", "job.progress",
         "job.progress+  (missing)"),
        ("reorder", "out_of_order", "job.progress",
         "<- out of order: job.progress before job.accepted"),
        ("duplicate", "duplicated", "job.accepted",
         "<- duplicated: job.accepted seen 2 times"),
    ],
)  # fmt: skip
async def test_each_fault_is_caught_by_a_contract_configured_by_field_names(
    server: ProtocolBServer,
    client: WsClient,
    fault: str,
    kind: str,
    event: str,
    marked_line: str,
) -> None:
    server.set_faults(fault)
    await ask(client, f"under {fault}", job=f"job-{fault}")
    with pytest.raises(ContractViolationError) as caught:
        await client.expect_contract(JOBS, timeout=WAIT_S)
    result = caught.value.result
    assert [(v.kind, v.event) for v in result.violations] == [(kind, event)]
    assert str(caught.value).startswith(f"contract JOBS, job=job-{fault}: 1 violation\n")
    assert marked_line in str(caught.value)


@pytest.mark.asyncio
async def test_leaked_jobs_reach_other_accounts_while_the_owner_run_stays_valid(
    server: ProtocolBServer, tokens: TokenFactory
) -> None:
    owner, other = tokens.user(), tokens.user()
    async with b_client(server, owner) as mine, b_client(server, other) as theirs:
        await theirs.expect(kind="hello", timeout=WAIT_S)
        server.set_faults("leak")
        await ask(mine, "private words", job="job-leak")
        assert (await mine.expect_contract(JOBS, timeout=WAIT_S)).ok
        leaked = await theirs.expect(event="job.result", timeout=WAIT_S)
    assert leaked["account"] == owner.id and leaked["answer"] == "echo: private words"


@pytest.mark.asyncio
async def test_a_contract_for_another_protocol_sees_none_of_these_events(
    client: WsClient,
) -> None:
    await ask(client, "not an agent run")
    await client.expect(event="job.result", timeout=WAIT_S)
    with pytest.raises(ContractViolationError) as caught:
        await client.expect_contract(AGENT_EVENTS, timeout=0.05)
    assert caught.value.result.observed == ()
    assert len(caught.value.result.violations) == len(AGENT_EVENTS.events)
