"""Use cases: each orchestrates the domain and the store (and, later, adapters) for one command."""
