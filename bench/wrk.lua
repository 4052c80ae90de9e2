-- One script for every benchmark run, configured through the environment:
--   BENCH_METHOD  GET | POST | PATCH
--   BENCH_PATHS   comma-separated paths, taken in turn (e.g. one screen per simulated tablet)
--   BENCH_BODY    none | minimal (50 integers) | patch (one PHQ-9 answer that changes every time)
--   BENCH_TOKEN   bearer token, if any
-- done() prints one JSON line that bench/__main__.py reads.
local paths = {}
for p in string.gmatch(os.getenv("BENCH_PATHS") or "/", "[^,]+") do
  table.insert(paths, p)
end
local method = os.getenv("BENCH_METHOD") or "GET"
local kind = os.getenv("BENCH_BODY") or "none"
local headers = { ["Content-Type"] = "application/json" }
local token = os.getenv("BENCH_TOKEN")
if token and token ~= "" then
  headers["Authorization"] = "Bearer " .. token
end
local fields = {}
for i = 0, 49 do
  table.insert(fields, string.format('"f%d":%d', i, i))
end
local minimal_body = "{" .. table.concat(fields, ",") .. "}"
local counter = 0

request = function()
  counter = counter + 1
  local path = paths[(counter % #paths) + 1]
  local body = nil
  if kind == "minimal" then
    body = minimal_body
  elseif kind == "patch" then
    -- Cycle the value so every PATCH really changes the answer (a write, an event and an audit entry).
    body = string.format('{"answers":{"phq9_1":%d}}', math.floor(counter / #paths) % 4)
  end
  return wrk.format(method, path, headers, body)
end

done = function(summary, latency, requests)
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"non2xx":%d,"socket_errors":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
