"""``crm dev``: the web app, a worker and beat in one command, for one machine."""

from __future__ import annotations

import ipaddress
import logging
import os
import signal
import subprocess
import sys
import threading

import click
from kombu.utils.url import maybe_sanitize_url
from sqlalchemy.engine import make_url

from crm_core.config import Settings, get_settings
from crm_core.mail_transport.backends import check_mail_url


def _worker_command(schedule_file: str, loglevel: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "celery",
        "--app",
        "workers.app",
        "worker",
        "--beat",
        "--schedule",
        schedule_file,
        "--concurrency",
        "2",
        "--loglevel",
        loglevel,
    ]


def listening_url(host: str, port: int) -> str:
    """The base URL of ``host:port`` as seen from this machine (all addresses: loopback)."""
    try:
        if ipaddress.ip_address(host).is_unspecified:
            host = "127.0.0.1"
    except ValueError:  # a host name
        pass
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def started_line(settings: Settings, host: str, port: int) -> str:
    """What ``crm dev`` says it serves: addresses and URLs, with every password masked.

    The line lands in terminals, CI logs and screenshots; a password in a
    database or broker URL must not.
    """
    database = make_url(settings.resolved_database_url()).render_as_string(hide_password=True)
    broker = maybe_sanitize_url(settings.resolved_broker_url(), mask="***")
    return (
        f"crm dev: web listening on {host}:{port}, public URL {settings.resolved_public_url()},"
        f" database {database}, broker {broker}"
    )


def _stop(process: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    """Warm shutdown (finish the running tasks), then kill after ``grace`` seconds."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _watch(process: subprocess.Popen[bytes], stopping: threading.Event) -> None:
    """If the worker dies on its own, stop the whole thing rather than run half a system."""
    code = process.wait()
    if not stopping.is_set():
        click.echo(f"crm dev: the worker exited with status {code}; stopping", err=True)
        os.kill(os.getpid(), signal.SIGTERM)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5000, show_default=True, type=int, help="Port to listen on.")
@click.option("--no-migrate", is_flag=True, help="Do not apply migrations first.")
def dev(host: str, port: int, no_migrate: bool) -> None:
    """Run the web app, a Celery worker and beat together (migrating first).

    With no configuration this needs no services: SQLite and an embedded
    SQLite-backed broker under ./var/. Tasks run in the worker process, never
    inside the request.
    """
    # Links in outgoing mail (unsubscribe) are built on CRM_PUBLIC_URL: unless it
    # is set, the address served here. The worker inherits it.
    os.environ.setdefault("CRM_PUBLIC_URL", listening_url(host, port))
    settings = get_settings()
    # The web process and the worker (and its pool) share one metrics directory, so
    # /metrics shows them all. Set before anything imports the metrics (the app below).
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str((settings.var_dir / "metrics").resolve()))
    from crm_core import migrate
    from crm_core.ops import metrics
    from webhooks.app import create_app

    # Checked before anything starts: a worker would otherwise claim sends it cannot make.
    problem = check_mail_url(settings.resolved_mail_url())
    if problem:
        raise click.ClickException(problem)
    settings.ensure_var_dir()
    if not no_migrate:
        migrate.upgrade(settings.resolved_database_url())
    app = create_app(settings)
    # The development server's own request lines quote query strings, which can hold an
    # address (?email=...): only its warnings are logged. The app logs its webhooks itself.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    metrics.remove_stale_files()
    if settings.metrics_port:
        metrics.serve(settings.metrics_port, address=host)

    schedule = str((settings.var_dir / "celerybeat-schedule").resolve())
    # The web process serves everything the directory holds; the worker needs no port of its own.
    worker_env = {k: v for k, v in os.environ.items() if k != "CRM_METRICS_PORT"}
    worker = subprocess.Popen(_worker_command(schedule, settings.log_level), env=worker_env)
    stopping = threading.Event()
    threading.Thread(target=_watch, args=(worker, stopping), daemon=True).start()

    def _terminate(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    click.echo(started_line(settings, host, port))
    try:
        app.run(host=host, port=port, threaded=True, use_reloader=False)
    except KeyboardInterrupt:
        pass
    finally:
        stopping.set()
        _stop(worker)
