-- wrk script for bench/intake.py: replays requests signed beforehand by Python.
-- Arguments: <file of "id TAB timestamp TAB signature TAB body" lines> <number of wrk threads>.
-- Each wrk thread takes every n-th line, so no request is sent twice unless a
-- thread runs out (then it starts over and reports it: "wrapped").

local created = 0
local threads = {}

function setup(thread)
  thread:set("id", created)
  created = created + 1
  table.insert(threads, thread)
end

function init(args)
  local path, n = args[1], tonumber(args[2])
  reqs = {}
  local i = 0
  for line in io.lines(path) do
    if i % n == id then
      local mid, ts, sig, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
      reqs[#reqs + 1] = wrk.format("POST", "/webhooks/bench/leads", {
        ["Content-Type"] = "application/json",
        ["webhook-id"] = mid,
        ["webhook-timestamp"] = ts,
        ["webhook-signature"] = sig,
      }, body)
    end
    i = i + 1
  end
  index = 0
  wrapped = 0
  non2xx = 0
end

function request()
  index = index + 1
  if index > #reqs then
    index = 1
    wrapped = wrapped + 1
  end
  return reqs[index]
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  end
end

function done(summary, latency, requests)
  local bad, wraps = 0, 0
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("non2xx")
    wraps = wraps + thread:get("wrapped")
  end
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %d, "seconds": %.3f, "p50_ms": %.3f, "p90_ms": %.3f, "p99_ms": %.3f, ' ..
    '"max_ms": %.3f, "non_2xx": %d, "socket_errors": %d, "wrapped": %d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000,
    latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000, bad,
    errors.connect + errors.read + errors.write + errors.timeout, wraps))
end
