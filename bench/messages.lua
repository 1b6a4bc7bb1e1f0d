-- wrk: POST a small non-streaming /v1/messages call; the key comes from GG_KEY
wrk.method = "POST"
wrk.body = '{"model":"claude-fake-1","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["anthropic-version"] = "2023-06-01"
wrk.headers["x-api-key"] = os.getenv("GG_KEY") or "none"
