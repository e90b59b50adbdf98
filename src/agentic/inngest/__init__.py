"""Adapters to Inngest: the SDK client (``client``) and the events the service sends (``events``).
Nothing is imported here: the SDK loads with the module that needs it."""
