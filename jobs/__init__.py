"""The sample project's job code: everything whitelist.yaml may name lives here."""
