-- s5 poll (change feed): the reader asks "anything new?" with an up-to-date cursor; the answer is empty.
-- BENCH_CURSOR: the reader's next_cursor, taken once all its changes were read (bench/extras.sh).
local env = os.getenv
local path = "/api/v1/users/" .. env("BENCH_UID_R") .. "/tasks/changes?cursor=" .. env("BENCH_CURSOR")
local req = wrk.format("GET", path, { ["Authorization"] = "Bearer " .. env("BENCH_TOKEN_R"), ["Accept"] = "application/json" })
request = function() return req end
