-- s5 poll (ETag): the reader asks for a task it holds with If-None-Match; the answer is 304, no body.
-- BENCH_TASK_PATH and BENCH_ETAG: one of the reader's tasks and its current ETag (bench/extras.sh).
local env = os.getenv
local req = wrk.format("GET", env("BENCH_TASK_PATH"), {
  ["Authorization"] = "Bearer " .. env("BENCH_TOKEN_R"),
  ["Accept"] = "application/json",
  ["If-None-Match"] = env("BENCH_ETAG"),
})
request = function() return req end
