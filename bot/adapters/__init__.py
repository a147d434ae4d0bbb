"""Adapters: the real implementations of the ports the domain and services use."""
