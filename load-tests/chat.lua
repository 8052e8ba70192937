-- wrk script: one small non-streaming chat completion per request.
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.headers["authorization"] = "Bearer " .. (os.getenv("SWITCHYARD_KEY") or "sk-load")
wrk.body = '{"model":"' .. (os.getenv("MODEL") or "gpt-4o-mini") .. '","messages":[{"role":"user","content":"Say hello in one word."}],"max_tokens":8}'
