"""Servers this harness brings up: models.conf profiles, the compose .env, compose up/down with a real
health-wait, and the images built from host-downloaded inputs."""
