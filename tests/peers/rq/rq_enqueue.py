"""Enqueues `rq_jobs.slow` jobs with RQ's own client and prints their ids, one a line.

python rq_enqueue.py <redis url> <queue> <seconds>...
"""
import sys

from redis import Redis
from rq import Queue

url, name, durations = sys.argv[1], sys.argv[2], sys.argv[3:]
queue = Queue(name, connection=Redis.from_url(url))
for seconds in durations:
    print(queue.enqueue("rq_jobs.slow", float(seconds)).id)
