"""Prefect flows: thin tables of contents over the stages in tasks/ (see flows/steps.py for the tasks)."""
