"""The use cases: submitting a kind's request (direct or queued), routing, the kinds and their handlers,
queueing a job, and the read side. They depend on the domain, the providers and the store, never on the web
layer or the Inngest functions. Import the module you need (nothing is imported here: cold start)."""
