"""Cluster mode: the same harvest as page-sized Celery tasks over Redis, indexing into ES.

    connection   the Redis bundle (state store, leases, run ledger), one per process
    app          the Celery app and every setting it runs with
    time_limits  task time limits derived from the HTTP timeouts and retries
    payloads     what travels through the queues: one typed payload per task, by name
    runs         requesting, recovering, finishing and giving up harvest runs
    work         the work of each task as plain functions
    task_base    retries, delivery counting and dead-lettering around every task
    tasks        the Celery tasks: thin shells over `work`
    dead_letters the dead-letter list
    schedule     beat entries from the sources' cron expressions
    metrics      cluster-wide counters in Redis, served to Prometheus
    worker       `ernte worker` and `ernte beat` processes

Data flows one way: request (runs) -> queue (payloads) -> task (tasks -> work) -> state in
Redis (connection). Nothing here is imported by the in-process harvest.
"""
