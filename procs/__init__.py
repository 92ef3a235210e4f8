"""Thin process entry points run by supervisord: parse args, load config, run the service."""
