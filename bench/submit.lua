-- POST /midjourney/v1/imagine with a real key: auth, admission, freeze and insert all run.
wrk.method = "POST"
wrk.body = '{"prompt":"a cute kitten --ar 4:5","mode":"fast","getUImages":true}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["TT-API-KEY"] = os.getenv("GG_KEY")
