-- GET /midjourney/v1/fetch?jobId=... of a job picked at random from the ids in the file
-- GG_IDS (one a line), with a real key: live jobs, so every fetch reads the database.
wrk.headers["TT-API-KEY"] = os.getenv("GG_KEY")
local ids = {}
for line in io.lines(os.getenv("GG_IDS")) do
  ids[#ids + 1] = line
end
math.randomseed(os.time())

request = function()
  local id = ids[math.random(#ids)]
  return wrk.format("GET", "/midjourney/v1/fetch?jobId=" .. id)
end
