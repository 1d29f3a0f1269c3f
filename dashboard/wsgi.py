"""WSGI entry point for production web processes (e.g. ``gunicorn 'dashboard.wsgi:app'``).

Each web process builds its own app; workers, the scheduler and the ingester run as separate
``parkops`` commands against the same PostgreSQL, Redis and MQTT broker.
"""

from dashboard.app import create_app
from dashboard.serving import quiet_gunicorn

quiet_gunicorn()
app = create_app()
