"""The web layer: Flask app (composition root), API blueprint, auth, problem details, SSE."""
