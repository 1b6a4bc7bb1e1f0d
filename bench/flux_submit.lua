-- POST /flux/generate with a real key: auth, validation, admission, freeze and insert all run.
wrk.method = "POST"
wrk.body = '{"prompt":"a lighthouse at sunset over the sea","mode":"flux1-dev","aspect_ratio":"16:9"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["TT-API-KEY"] = os.getenv("GG_KEY")
