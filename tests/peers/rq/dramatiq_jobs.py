"""The Dramatiq app of the dramatiq source's tests (crates/sources/tests/dramatiq_source.rs).

The broker is Dramatiq's RedisBroker at $EBB_TEST_REDIS_URL with the test's heartbeat timeout
($EBB_TEST_HEARTBEAT_TIMEOUT_MS); every dispatch runs maintenance, so that a new worker puts a
dead one's messages back at once rather than by chance (1 in 1,000 by default).
"""
import os
import time

import dramatiq
from dramatiq.brokers.redis import RedisBroker

broker = RedisBroker(
    url=os.environ["EBB_TEST_REDIS_URL"],
    heartbeat_timeout=int(os.environ["EBB_TEST_HEARTBEAT_TIMEOUT_MS"]),
    maintenance_chance=1_000_000,
)
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name=os.environ.get("EBB_TEST_QUEUE", "default"), max_retries=0)
def slow(seconds):
    """Works for `seconds`: long enough for the test to read the message in flight."""
    time.sleep(seconds)
