-- wrk script for bench/intake.py: replays requests signed beforehand by Python.
-- Arguments: <file of "path TAB name TAB value … TAB body" lines> <number of wrk threads>:
-- each line is one request, its headers as name/value pairs between path and body.
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
      local fields = {}
      for field in (line .. "\t"):gmatch("([^\t]*)\t") do
        fields[#fields + 1] = field
      end
      local headers = {}
      for k = 2, #fields - 2, 2 do
        headers[fields[k]] = fields[k + 1]
      end
      reqs[#reqs + 1] = wrk.format("POST", fields[1], headers, fields[#fields])
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
