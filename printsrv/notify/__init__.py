"""Telling residents their card is ready: the SMS sender (an outbox consumer), pickup slots,
phone numbers, and the SMS gateways (Kannel, a file for the demo). See docs/pickup.md."""
