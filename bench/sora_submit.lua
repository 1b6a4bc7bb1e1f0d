-- POST /sora/generations (a 10 s 720p video) with a real key: auth, admission, freeze, insert.
wrk.method = "POST"
wrk.body = '{"model":"sora-2","prompt":"a misty mountain lake at sunset","orientation":"landscape","duration":10}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["TT-API-KEY"] = os.getenv("GG_KEY")
