"""The LLM relay: Anthropic Messages and OpenAI Chat Completions passed to upstream LLM
accounts, billed per token (accounts, pricing, protocols, the relay itself)."""
