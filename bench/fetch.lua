-- GET /midjourney/v1/fetch?jobId=... of an existing job, with a real key.
wrk.headers["TT-API-KEY"] = os.getenv("GG_KEY")
