"""The upstream side of a request: the upstream clients per provider (upstream), attempts across
deployments with retries and cooldowns (dispatch), relaying answers while counting their tokens
(relay, event_relay), and which deployment holds a stored response (affinity)."""
