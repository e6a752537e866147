"""The `firebell` command: serve, migrate, check the configuration, reports, retries, exports and
a test alert. A door like the bot and the webhooks: it builds Firebell with app.py and calls the
same handlers, never its own copy of their logic."""
