-- wrk script for the overhead bench: POSTs one prebuilt body (BODY_FILE) to REQ_PATH (default
-- /v1/chat/completions) on every request, and prints one JSON line (WRK_JSON {...}) with the
-- run's numbers: request count, errors by kind and latency percentiles in microseconds.
local path = os.getenv("BODY_FILE")
local f = assert(io.open(path, "rb"))
local body = f:read("*a")
f:close()

wrk.method = "POST"
wrk.path = os.getenv("REQ_PATH") or "/v1/chat/completions"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("AUTH_TOKEN") or "bench")
-- EXTRA_HEADER="name: value" adds one more request header.
local extra = os.getenv("EXTRA_HEADER")
if extra and extra ~= "" then
  local name, value = extra:match("^([^:]+):%s*(.*)$")
  wrk.headers[name] = value
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK_JSON {\"requests\":%d,\"duration_us\":%d,\"bytes\":%d,\"err_connect\":%d,\"err_read\":%d," ..
    "\"err_write\":%d,\"err_status\":%d,\"err_timeout\":%d,\"lat_mean_us\":%.2f,\"lat_p50_us\":%d," ..
    "\"lat_p90_us\":%d,\"lat_p99_us\":%d,\"lat_max_us\":%d}\n",
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency.mean, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max))
end
