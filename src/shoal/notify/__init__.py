"""Notifications to the customer's backend: the notifier WebSocket fan-out and webhooks."""
