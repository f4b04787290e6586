"""The Celery app of the celery source's tests (crates/sources/tests/celery_source.rs).

Configured from the environment, so that one module serves every case:
EBB_BROKER (the Redis URL), EBB_ACKS_LATE=1 (task_acks_late), EBB_KEYPREFIX (kombu's
global_keyprefix), EBB_PRIORITY_STEPS (comma-separated), EBB_SEP (kombu's sep) and
EBB_VISIBILITY_TIMEOUT (kombu's visibility_timeout, seconds).
Everything else is Celery's default.
"""

import os
import time

from celery import Celery

app = Celery("ebb_peer", broker=os.environ["EBB_BROKER"])
app.conf.task_acks_late = os.environ.get("EBB_ACKS_LATE") == "1"
options = {}
if os.environ.get("EBB_KEYPREFIX"):
    options["global_keyprefix"] = os.environ["EBB_KEYPREFIX"]
if os.environ.get("EBB_PRIORITY_STEPS"):
    options["priority_steps"] = [int(step) for step in os.environ["EBB_PRIORITY_STEPS"].split(",")]
if os.environ.get("EBB_SEP"):
    options["sep"] = os.environ["EBB_SEP"]
if os.environ.get("EBB_VISIBILITY_TIMEOUT"):
    options["visibility_timeout"] = float(os.environ["EBB_VISIBILITY_TIMEOUT"])
app.conf.broker_transport_options = options


@app.task
def slow(seconds):
    """Holds a worker's process for `seconds`, like a real slow task."""
    time.sleep(seconds)
    return seconds
