"""Sends `dramatiq_jobs.slow` messages with Dramatiq's own client and prints their ids.

EBB_TEST_REDIS_URL=… EBB_TEST_QUEUE=… python dramatiq_send.py <count> <seconds> [<delay ms>]
"""
import sys

import dramatiq_jobs

count, seconds = int(sys.argv[1]), float(sys.argv[2])
delay = int(sys.argv[3]) if len(sys.argv) > 3 else None
for _ in range(count):
    print(dramatiq_jobs.slow.send_with_options(args=(seconds,), delay=delay).message_id)
