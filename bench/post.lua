-- wrk script: POST the payload file named by the PAYLOAD environment variable, each request
-- with its own groupKey (thread and sequence number in front of the payload's), so every
-- webhook is a distinct notification, as in production: alertrelay suppresses duplicates
-- (issue 16), and the same body posted again would measure that, not a delivery.
local f = assert(io.open(os.getenv("PAYLOAD"), "rb"))
local payload = f:read("*a")
f:close()
local _, split = payload:find('"groupKey"%s*:%s*"')
assert(split, "the payload has no groupKey")
local head, tail = payload:sub(1, split), payload:sub(split + 1)
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("id", threads)
end

local sent = 0
function request()
  sent = sent + 1
  return wrk.format(nil, nil, nil, head .. id .. "-" .. sent .. "-" .. tail)
end
