"""Sends tasks with Celery's own client: send.py COUNT SECONDS QUEUE [PRIORITY]."""

import sys

from tasks import slow

count, seconds, queue = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
priority = int(sys.argv[4]) if len(sys.argv) > 4 else None
for _ in range(count):
    slow.apply_async((seconds,), queue=queue, priority=priority)
