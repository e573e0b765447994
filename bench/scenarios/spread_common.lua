-- The harness's scenarios, spread over many users and client addresses, for runs with the rate limits on.
--
-- bench/run.sh installs this file as the harness copy's common.lua (the harness's own is kept beside
-- it as harness_common.lua, loaded first). Without a users.txt beside the target's ids.txt (that is:
-- the ceiling, and any configuration without rate limits) the harness's requests go out unchanged.
-- With one (written by bench/seed_sql.py when the project's database is prepared), every request
-- acts as a user picked at random among N readers: its list, one of its tasks, a complete of one of
-- its tasks, or a create by the reader's writer twin (so lists stay at their seeded size), with
-- "X-Forwarded-For: 10.x.y.z", one address per user (the server trusts 127.0.0.1 as its proxy).
-- N users share the load so that none reaches the per-user limit (600/minute by default) nor the
-- per-IP one: see docs/performance.md for the arithmetic.
local env = os.getenv
local M = dofile(env("BENCH_LUA_DIR") .. "/harness_common.lua")
local users_file = (env("BENCH_IDS") or ""):gsub("[^/]*$", "") .. "users.txt"
local f = io.open(users_file, "r")
if not f then return M end

local readers = {}
for line in f:lines() do
  local uid, tok, wuid, wtok, ids = line:match("^(%S+) (%S+) (%S+) (%S+) (%S+)$")
  if uid then
    local n = #readers + 1
    local ip = string.format("10.%d.%d.%d", math.floor(n / 65536) % 256, math.floor(n / 256) % 256, n % 256)
    local r = { uid = uid, wuid = wuid, ids = {}, list = nil, gets = {} }
    for id in ids:gmatch("[^,]+") do r.ids[#r.ids + 1] = id end
    r.h = { ["Authorization"] = "Bearer " .. tok, ["Accept"] = "application/json", ["X-Forwarded-For"] = ip }
    r.hj = { ["Authorization"] = r.h["Authorization"], ["Accept"] = "application/json",
             ["Content-Type"] = "application/json", ["X-Forwarded-For"] = ip }
    r.hw = { ["Authorization"] = "Bearer " .. wtok, ["Accept"] = "application/json",
             ["Content-Type"] = "application/json", ["X-Forwarded-For"] = ip }
    -- Pre-built where nothing varies: wrk then only copies bytes.
    r.list = wrk.format("GET", "/api/v1/users/" .. uid .. "/tasks?page=1&limit=20", r.h)
    for i, id in ipairs(r.ids) do r.gets[i] = wrk.format("GET", "/api/v1/users/" .. uid .. "/tasks/" .. id, r.h) end
    readers[n] = r
  end
end
f:close()
if #readers == 0 then return M end

local function anyone() return readers[math.random(#readers)] end

function M.list() return anyone().list end

function M.get()
  local r = anyone()
  return r.gets[math.random(#r.gets)]
end

local n_create = 0
function M.create()
  n_create = n_create + 1
  local r = anyone()
  return wrk.format("POST", "/api/v1/users/" .. r.wuid .. "/tasks", r.hw,
    '{"title":"bench task ' .. n_create .. '","description":"created by the load benchmark","priority":"high"}')
end

function M.update()
  local r = anyone()
  local flag = (math.random(2) == 1) and "true" or "false"
  return wrk.format("PATCH", "/api/v1/users/" .. r.uid .. "/tasks/" .. r.ids[math.random(#r.ids)] .. "/complete",
    r.hj, '{"completed":' .. flag .. '}')
end

-- The harness's s4 cycle (40% list, 40% get, 10% create, 10% complete), on these functions.
local cycle = { M.list, M.get, M.list, M.get, M.create, M.list, M.get, M.list, M.get, M.update }
local n_mix = 0
function M.mixed()
  n_mix = n_mix % #cycle + 1
  return cycle[n_mix]()
end

return M
