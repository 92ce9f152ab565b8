"""The running service: config, logs, metrics, process hygiene, start-up."""
