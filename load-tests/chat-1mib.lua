-- wrk script: a chat completion with a 1 MiB request body (a long agent trace).
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.headers["authorization"] = "Bearer " .. (os.getenv("SWITCHYARD_KEY") or "sk-load")
local filler = string.rep("lorem ipsum ", 1048576 / 12)
wrk.body = '{"messages":[{"role":"user","content":"' .. filler .. '"}],"model":"' .. (os.getenv("MODEL") or "gpt-4o-mini") .. '"}'
