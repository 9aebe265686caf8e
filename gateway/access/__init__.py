"""Who may do what: API keys and their principals, teams, quota tiers, budget scopes and the
governance fields of keys, users and teams. Reads the store (through caches), never the network."""
