"""Celery settings, each with the reason it is set.

The database is the record and the broker is only a transport: a message lost
or delivered twice must never lose or double an effect. Tasks claim their work
in the database, so redelivery is safe; these settings make redelivery happen
rather than silent loss.
"""

from kombu import Exchange, Queue

from crm_core.config import get_settings

_settings = get_settings()

broker_url = _settings.resolved_broker_url()

# --- Delivery: at least once, never silently dropped -------------------------
# Acknowledge after the task ran, so a worker that dies mid-task leaves the
# message on the broker to be delivered again.
task_acks_late = True
# ...and also when the worker process is killed (OOM, kill -9), not only on a
# clean exception: the message goes back to the queue instead of being acked.
task_reject_on_worker_lost = True
# Take one message at a time: a prefetched message sits unacknowledged behind a
# long task, and a crash then delays it until the visibility timeout.
worker_prefetch_multiplier = 1
# A lost broker connection means unacked messages will be redelivered; stop the
# tasks still running instead of letting them finish alongside their redelivery.
worker_cancel_long_running_tasks_on_connection_loss = True

# --- Time limits and retries ---------------------------------------------------
# No task should run longer than this; a stuck one is killed and redelivered.
task_time_limit = _settings.task_time_limit_seconds
task_soft_time_limit = task_time_limit * 4 // 5
# The longest backoff any task retries with (seconds). Retries are short ETAs;
# long waits live in the database (due times) and beat picks them up.
crm_retry_backoff_max = _settings.retry_backoff_max_seconds
# Attempts before an event is given up as dead.
crm_max_attempts = _settings.max_attempts

# --- The broker: settings keyed on its kind ------------------------------------
# Redis redelivers an unacked message after the visibility timeout. It must be
# longer than any task can run plus the longest retry countdown, or a task in
# progress (or an ETA retry waiting in a worker) would be delivered twice.
_visibility_timeout = 2 * (task_time_limit + crm_retry_backoff_max)
# How long a message may stay delivered and unacknowledged (acks late): behind
# the task a worker runs, then while it runs itself; or, where countdowns are
# held in the worker (Redis, classic queues), for its countdown and then its run.
# On Redis the visibility timeout is above it; on RabbitMQ the server's
# ``consumer_timeout`` (default 30 min) must be, or the server closes the channel.
crm_longest_unacked_seconds = task_time_limit + max(task_time_limit, crm_retry_backoff_max)
# Scale each kind of work separately (see task_routes below).
QUEUE_NAMES = ("ingest", "campaigns", "followups", "maintenance", "mailboxes")


def broker_kind(url: str) -> str:
    """``"embedded"``, ``"redis"``, ``"rabbitmq"`` or ``"memory"``, from the URL's scheme."""
    scheme = url.split("://", 1)[0].lower()
    if scheme.startswith(("sqla+", "sqlalchemy+")):
        return "embedded"
    if scheme in ("redis", "rediss"):
        return "redis"
    if scheme in ("amqp", "amqps", "pyamqp"):
        return "rabbitmq"
    return "memory"


def transport_options(url: str, *, key_prefix: str = "") -> dict[str, object]:
    """What kombu's transport for ``url`` is given (``broker_transport_options``)."""
    kind = broker_kind(url)
    if kind == "embedded":
        # kombu's SQLAlchemy transport hands these options to create_engine(); it
        # has no visibility timeout (unacked messages are restored on shutdown).
        # Its errors never quote a message's values (task arguments).
        return {"hide_parameters": True}
    if kind == "rabbitmq":
        # RabbitMQ redelivers an unacked message as soon as the channel of the
        # worker holding it closes (kill -9 included): no visibility timeout.
        # Publisher confirms: a publish returns once the broker has the message
        # (written to a quorum of nodes), and a refused one raises instead of
        # vanishing; the event then waits in the database for the sweeper.
        return {"confirm_publish": True}
    if kind == "redis":
        options: dict[str, object] = {
            "visibility_timeout": _visibility_timeout,
            # Fail fast when Redis is down or paused, so a webhook request never hangs
            # on the broker; the event is already committed and the sweeper republishes it.
            "socket_connect_timeout": 2,
            "socket_timeout": 5,
        }
        if key_prefix:
            options["global_keyprefix"] = key_prefix
        return options
    return {}


def queues(url: str) -> tuple[Queue, ...]:
    """The queues, each with its own exchange and routing key, as ``url``'s broker wants them.

    On RabbitMQ they are quorum queues (replicated, durable, with a delivery
    count) behind topic exchanges: Celery delays a countdown (a retry) through
    RabbitMQ's native delayed delivery, which needs a topic exchange, instead
    of holding the message unacknowledged in a worker until it is due.
    """
    if broker_kind(url) == "rabbitmq":
        return tuple(
            Queue(
                name,
                Exchange(name, type="topic", durable=True),
                routing_key=name,
                durable=True,
                queue_arguments={"x-queue-type": "quorum"},
            )
            for name in QUEUE_NAMES
        )
    return tuple(
        Queue(name, Exchange(name, type="direct"), routing_key=name) for name in QUEUE_NAMES
    )


broker_transport_options = transport_options(broker_url, key_prefix=_settings.broker_key_prefix)
_on_rabbitmq = broker_kind(broker_url) == "rabbitmq"
# Queues Celery declares on its own (none are expected) are quorum queues too on
# RabbitMQ; a worker consuming quorum queues uses per-consumer prefetch (they have
# no global QoS) and delays countdowns through RabbitMQ instead of holding them.
task_default_queue_type = "quorum" if _on_rabbitmq else "classic"
task_default_exchange_type = "topic" if _on_rabbitmq else "direct"
worker_detect_quorum_queues = True
# Fail fast when the broker is down (Redis has its own socket timeouts above):
# the event is already committed, and the sweeper publishes it later.
broker_connection_timeout = 2

# Publishing retries are bounded: a few quick tries, then give up and let the
# sweeper publish later (the event row is the record, not the message).
task_publish_retry = True
task_publish_retry_policy = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
# Retry the initial broker connection at start-up (workers may start before Redis).
broker_connection_retry_on_startup = True
broker_connection_max_retries = 100

# --- Serialization and results -------------------------------------------------
# JSON only: task arguments are ids, and pickle from a broker is code execution.
task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]
# No task result is read by anyone: state lives in the database.
task_ignore_result = True
result_backend = None

# --- Queues ----------------------------------------------------------------------
# Scale each kind of work separately: ingestion must never wait behind a
# 100,000-recipient campaign.
# Each queue has its own direct exchange and routing key, so a message for one
# queue can never be copied into another.
task_default_queue = "ingest"
task_default_exchange = "ingest"
task_default_routing_key = "ingest"
task_queues = queues(broker_url)
task_routes = {
    "crm.maintenance.*": {"queue": "maintenance", "routing_key": "maintenance"},
    # A slow IMAP server must not hold up the processing of stored events.
    "crm.mailboxes.*": {"queue": "mailboxes", "routing_key": "mailboxes"},
    "crm.campaigns.*": {"queue": "campaigns", "routing_key": "campaigns"},
    # Other outbound mail (case acknowledgements) shares the sending queue.
    "crm.mail.*": {"queue": "campaigns", "routing_key": "campaigns"},
    # Follow-up rules and the notifications they send: never behind a campaign.
    "crm.followups.*": {"queue": "followups", "routing_key": "followups"},
    "crm.notifications.*": {"queue": "followups", "routing_key": "followups"},
}
# Send rows one campaign batch claims: a crash leaves at most this many unknown.
crm_campaign_batch_size = 100
# Batch chains started per campaign; each holds one SMTP connection at a time.
crm_campaign_parallel_batches = 2
# Tries of a message whose failures proved it never left (connection refused…).
crm_campaign_max_attempts = 3

# --- Time ---------------------------------------------------------------------------
enable_utc = True
timezone = "UTC"

# --- Periodic work (beat) -------------------------------------------------------------
beat_schedule = {
    "heartbeat": {
        "task": "crm.maintenance.heartbeat",
        "schedule": _settings.heartbeat_seconds,
    },
    # Reads the backlog into the metrics' gauges: the database is counted here, never per scrape.
    "read-backlog": {
        "task": "crm.maintenance.read_backlog",
        "schedule": 15.0,
    },
    # Counts the closed quarter hours of inbox events the overview charts, recounting the
    # last two (statuses settle within minutes); the hourly full recount catches a status
    # changed later (a late retry, a replay). Recounts replace rows: a repeat changes nothing.
    "roll-up-event-rates": {
        "task": "crm.maintenance.roll_up_event_rates",
        "schedule": 60.0,
    },
    "recount-event-rates": {
        "task": "crm.maintenance.roll_up_event_rates",
        "schedule": 3600.0,
        "kwargs": {"full": True},
    },
    # Publishes inbox events no message carried (broker down at intake, worker
    # died mid-task, retry due): the database, not the broker, is the record.
    "sweep-inbox": {
        "task": "crm.maintenance.sweep_inbox",
        "schedule": _settings.sweep_interval_seconds,
    },
    # Drops the raw body of finished inbox events past CRM_INBOX_RETENTION_DAYS, in bounded
    # batches (personal data is not kept longer than it is needed).
    "prune-inbox": {
        "task": "crm.maintenance.prune_inbox",
        "schedule": _settings.retention_interval_seconds,
    },
    # Fans out one poll per enabled IMAP mailbox; each poll takes the mailbox's lease.
    "poll-mailboxes": {
        "task": "crm.mailboxes.poll_all",
        "schedule": _settings.imap_poll_seconds,
    },
    # Sends the outbound e-mails recorded as pending (case acknowledgements).
    "send-pending-mail": {
        "task": "crm.mail.send_pending",
        "schedule": 5.0,
    },
    # Starts due campaigns and turns sends left by a crashed batch into "unknown".
    "dispatch-campaigns": {
        "task": "crm.campaigns.dispatch",
        "schedule": 10.0,
    },
    # Fires the follow-up rules over due times stored in the database (no long ETAs).
    "evaluate-followups": {
        "task": "crm.followups.evaluate",
        "schedule": _settings.followup_eval_seconds,
    },
    # Posts the notifications owed to subscribers, and retries those that are due.
    "deliver-notifications": {
        "task": "crm.notifications.deliver",
        "schedule": 5.0,
    },
}
