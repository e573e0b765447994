-- Large-data scenarios (bench/large.sh): one route of one user, or of many users in turn.
--
-- LARGE_ROUTE  list_first | list_deep | list_filtered | search | get | create | changes (page numbers,
--              with the exact total), scroll_first | scroll_deep | scroll_filtered | scroll_search (the same
--              listings read by cursor: no total; scroll_deep from LARGE_SCROLL_CURSOR)
-- LARGE_UID, LARGE_TOKEN, LARGE_TASK, LARGE_CURSOR, LARGE_WORD: the user and its data (bench/seed_sql.py's
--              big.env); LARGE_DEEP_PAGE: the deep page (500 with 100,000 tasks)
-- LARGE_USERS  a users.txt instead (bench/seed_sql.py): every request as one of its readers, in turn
--              (list_first and get only)
local env = os.getenv
local route = env("LARGE_ROUTE") or "list_first"

local function path_of(uid, task, cursor)
  local base = "/api/v1/users/" .. uid .. "/tasks"
  if route == "list_first" then return base .. "?page=1&limit=20" end
  if route == "list_deep" then return base .. "?page=" .. (env("LARGE_DEEP_PAGE") or "500") .. "&limit=20" end
  if route == "list_filtered" then return base .. "?completed=false&page=1&limit=20" end
  if route == "search" then return base .. "?search=" .. (env("LARGE_WORD") or "quarterly") .. "&page=1&limit=20" end
  if route == "scroll_first" then return base .. "?cursor=start&limit=20" end
  if route == "scroll_deep" then return base .. "?limit=20&cursor=" .. env("LARGE_SCROLL_CURSOR") end
  if route == "scroll_filtered" then return base .. "?completed=false&cursor=start&limit=20" end
  if route == "scroll_search" then
    return base .. "?search=" .. (env("LARGE_WORD") or "quarterly") .. "&cursor=start&limit=20"
  end
  if route == "get" then return base .. "/" .. task end
  if route == "create" then return base end
  if route == "changes" then return base .. "/changes?limit=100&cursor=" .. cursor end
  error("LARGE_ROUTE " .. route .. " is not a route of bench/scenarios/large.lua")
end

local reqs, n_create, n = {}, 0, 0
local function headers(token)
  return { ["Authorization"] = "Bearer " .. token, ["Accept"] = "application/json", ["Content-Type"] = "application/json" }
end

if env("LARGE_USERS") then
  for line in io.lines(env("LARGE_USERS")) do
    local uid, tok, _, _, ids = line:match("^(%S+) (%S+) (%S+) (%S+) (%S+)$")
    if uid then reqs[#reqs + 1] = wrk.format("GET", path_of(uid, ids:match("^[^,]+"), ""), headers(tok)) end
  end
elseif route ~= "create" then
  reqs[1] = wrk.format("GET", path_of(env("LARGE_UID"), env("LARGE_TASK"), env("LARGE_CURSOR")), headers(env("LARGE_TOKEN")))
end

function init(args)
  n = math.random(#reqs > 0 and #reqs or 1)
end

function request()
  if route == "create" and #reqs == 0 then
    n_create = n_create + 1
    return wrk.format("POST", path_of(env("LARGE_UID")), headers(env("LARGE_TOKEN")),
      '{"title":"bench task ' .. n_create .. '","description":"created by the load benchmark","priority":"high"}')
  end
  n = n % #reqs + 1
  return reqs[n]
end
