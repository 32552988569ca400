"""The prompt registry: versioned chat prompts with movable labels (``rung prompts``).

``model``: versions, label targets and rendering (pure); ``cache``: what a server keeps
of the registry (versions forever, labels for ``prompts.label_ttl_s``, the last good
answer while the store is down); ``apply``: a request's ``rung.prompt`` turned into its
messages and defaults; ``testing``: ``rung prompts test``. Storage: ``rung.store.prompts``.
"""
