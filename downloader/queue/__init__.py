"""Downloads on a task queue (taskiq over RabbitMQ or Redis): the bot hands jobs to workers.

Only used with QUEUE_URL; without it one process does everything and nothing here runs.
"""
