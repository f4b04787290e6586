"""Puts the tasks kombu deems lost (held longer than the visibility timeout) back on their
lists, as a worker does when it polls: kombu's own restore, without starting a worker."""

from tasks import app

with app.connection_for_write() as connection:
    connection.default_channel.qos.restore_visible(num=1000)
