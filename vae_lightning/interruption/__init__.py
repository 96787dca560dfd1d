"""Ctrl-C, SIGTERM and a cluster's signals: how a run stops, saves where it was and says so."""
