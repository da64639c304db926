"""Retention: how long a hospital keeps its studies, and the job that purges what is past it."""
