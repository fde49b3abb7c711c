"""Leases: a worker keeps what it holds for as long as it holds it, never sends what it may
have lost, and claims no more than it can send in a lease. The engine runs here on an
in-memory store shared by two workers and a real SMTP server that answers slowly."""

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

from app.core.config import Settings
from app.core.db import utcnow
from app.core.security import Signer
from app.sending.compose import DigestComposer
from app.sending.mailer import SmtpConfig, SmtpConnection
from app.sending.worker import LeaseBook, ThroughputMeter, Worker, claim_capacity
from tests.conftest import TEST_SECRET
from tests.sending.conftest import wait_until
from tests.sending.memory_store import MemoryQueue
from tests.sending.smtp import SmtpServer


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TestLeaseBook:
    def test_renewal_falls_due_every_third_of_a_lease(self) -> None:
        clock = FakeClock()
        book = LeaseBook(30, clock)
        assert not book.renewal_due()  # nothing held, nothing to renew
        book.hold([1, 2], leased_at=clock.now)
        clock.now += 9.9
        assert not book.renewal_due()
        clock.now += 0.1
        assert book.renewal_due()
        assert book.renewed([1, 2], {1, 2}, started_at=clock.now) == []
        assert not book.renewal_due()

    def test_a_delivery_is_fresh_until_a_quarter_lease_before_its_deadline(self) -> None:
        clock = FakeClock()
        book = LeaseBook(20, clock)
        book.hold([7], leased_at=clock.now)
        clock.now += 14.9
        assert book.fresh(7)
        clock.now += 0.2
        assert not book.fresh(7)  # 4.9 s left of a 20 s lease: too close to send
        book.renewed([7], {7}, started_at=clock.now)
        assert book.fresh(7)

    def test_deliveries_a_renewal_did_not_keep_are_lost_at_once(self) -> None:
        clock = FakeClock()
        book = LeaseBook(20, clock)
        book.hold([1, 2, 3], leased_at=clock.now)
        book.drop([3])  # marked meanwhile
        assert book.renewed([1, 2, 3], {1}, started_at=clock.now) == [2]
        assert book.fresh(1) and not book.fresh(2)
        assert 2 in book and 3 not in book  # held until its outcome is written

    def test_deadlines_count_from_before_the_claim(self) -> None:
        clock = FakeClock()
        book = LeaseBook(20, clock)
        leased_at = clock.now
        clock.now += 5  # a slow claim round trip
        book.hold([1], leased_at=leased_at)
        clock.now += 10.1
        assert not book.fresh(1)


class TestClaimCapacity:
    def _settings(self, make: Callable[..., Settings], **values: Any) -> Settings:
        return make(**values)

    def test_the_rate_cap_bounds_what_is_held(self, worker_settings) -> None:
        settings = worker_settings(send_rate=3, lease_seconds=300, worker_batch=500)
        assert claim_capacity(settings, None) == 450  # 3 mails/s x half a lease

    def test_the_observed_rate_bounds_what_is_held(self, worker_settings) -> None:
        settings = worker_settings(lease_seconds=10, worker_batch=500, smtp_connections=4)
        assert claim_capacity(settings, None) == 1000
        assert claim_capacity(settings, 20.0) == 100
        assert claim_capacity(settings, 0.1) == 8  # never below two per connection

    def test_throughput_is_measured_over_busy_windows_only(self) -> None:
        clock = FakeClock()
        meter = ThroughputMeter(window=10, clock=clock)
        meter.busy()
        for _ in range(50):
            clock.now += 0.1
            meter.finished()
        assert meter.rate() is None  # busy for 5 s only
        for _ in range(50):
            clock.now += 0.1
            meter.finished()
        assert meter.rate() == 10.0
        meter.idle()
        assert meter.rate() is None


def _worker(queue: MemoryQueue, worker_id: str, settings: Settings, smtp: SmtpServer) -> Worker:
    store = queue.store(worker_id)
    config = SmtpConfig.from_settings(settings)
    return Worker(
        settings=settings,
        store=store,
        composer=DigestComposer(settings, Signer(TEST_SECRET), store.campaign_content),
        transports=lambda: SmtpConnection(config),
        worker_id=worker_id,
    )


async def _run_both(workers: list[Worker], queue: MemoryQueue, timeout: float = 30) -> None:
    tasks = [asyncio.create_task(w.run()) for w in workers]
    try:
        await wait_until(
            lambda: all(row.status == "sent" for row in queue.rows.values()), timeout=timeout
        )
    finally:
        for worker in workers:
            worker.stop()
        await asyncio.gather(*tasks)


class TestTwoWorkers:
    async def test_a_queue_slower_than_a_lease_is_sent_once(
        self, worker_settings, smtp_server: SmtpServer
    ) -> None:
        # 80 mails at 20 per second: the first worker claims them all and needs 4 s, more
        # than two leases. Its leases must be renewed while they wait in its queue.
        smtp_server.handler.data_delay = 0.05
        settings = worker_settings(lease_seconds=1.5, smtp_connections=1)
        queue = MemoryQueue(lease_seconds=1.5)
        queue.add(80)
        workers = [_worker(queue, name, settings, smtp_server) for name in ("a", "b")]
        await _run_both(workers, queue)
        counts = Counter(smtp_server.handler.recipients())
        assert len(counts) == 80 and set(counts.values()) == {1}, counts.most_common(3)
        assert queue.ignored == 0
        assert queue.renewals["a"] >= 3

    async def test_a_worker_that_cannot_renew_stops_sending_before_its_lease_ends(
        self, worker_settings, smtp_server: SmtpServer
    ) -> None:
        # Worker "a" loses the database for renewals; "b" takes over what "a" held once the
        # leases run out. "a" must not send anything it may have lost.
        # The lease is long against the 50 ms the relay takes, so that a mail begun with a
        # quarter of a lease left is done before the lease ends, even on a busy machine.
        smtp_server.handler.data_delay = 0.05
        settings = worker_settings(lease_seconds=2, smtp_connections=1)
        queue = MemoryQueue(lease_seconds=2, fail_renewals_of={"a"})
        queue.add(80)
        first = _worker(queue, "a", settings, smtp_server)
        second = _worker(queue, "b", settings, smtp_server)
        task = asyncio.create_task(first.run())
        await wait_until(lambda: len(smtp_server.handler.received) >= 1)
        await _run_both([second], queue)
        first.stop()
        await task
        counts = Counter(smtp_server.handler.recipients())
        assert len(counts) == 80 and set(counts.values()) == {1}, counts.most_common(3)


class TestRetries:
    async def test_a_refused_mail_waits_out_its_backoff_then_goes(
        self, worker_settings, smtp_server: SmtpServer
    ) -> None:
        smtp_server.handler.rcpt_replies["amp1@example.com"].append("451 4.3.0 try later")
        settings = worker_settings(retry_base_seconds=0.4, retry_max_seconds=1)
        queue = MemoryQueue(lease_seconds=5)
        queue.add(2)
        started = utcnow()
        await _run_both([_worker(queue, "a", settings, smtp_server)], queue)
        row = queue.rows[1]
        assert row.status == "sent" and row.attempts == 2
        assert row.errors == ["RCPT: 451 4.3.0 try later"]
        # The first backoff is 0.2–0.4 s (full jitter in the upper half of 0.4 s).
        assert 0.2 <= (row.not_before - started).total_seconds() <= 0.6
        assert smtp_server.handler.attempts["amp1@example.com"] == 2


class TestClaimingAtCapacity:
    async def test_a_full_worker_claims_again_as_soon_as_outcomes_free_room(
        self, worker_settings, smtp_server: SmtpServer
    ) -> None:
        # Ten in hand at most, 60 to send, and a poll interval far longer than the whole send:
        # waiting out the poll interval whenever the worker is full would take half a minute.
        settings = worker_settings(worker_batch=5, worker_poll_seconds=10, lease_seconds=60)
        queue = MemoryQueue(lease_seconds=60)
        queue.add(60)
        started = asyncio.get_running_loop().time()
        await _run_both([_worker(queue, "a", settings, smtp_server)], queue, timeout=20)
        assert asyncio.get_running_loop().time() - started < 8
        assert len(smtp_server.handler.received) == 60
