"""The jobs the rq source's tests enqueue (crates/sources/tests/rq_source.rs)."""
import time


def slow(seconds):
    """Works for `seconds`: long enough for the test to read the job in flight."""
    time.sleep(seconds)
    return seconds
