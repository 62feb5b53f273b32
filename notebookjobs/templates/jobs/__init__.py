"""This project's jobs: modules here may be named under allowed_jobs in whitelist.yaml."""
