-- wrk script for bench/redirect.py: GET /r/<code> over a file of link codes.
--
--   wrk -t2 -c64 -d11s --latency -s bench/redirect_codes.lua http://127.0.0.1:PORT -- CODES SECONDS
--
-- CODES is a file with one link code per line; each thread walks it round-robin from its own
-- offset. Every code gets its own browser User-Agent (Chrome build number = line number), so each
-- code is a distinct visitor (same IP, different UA): realistic human clicks, never a "burst" of
-- one visitor over one delivery's links.
--
-- SECONDS is how long to send redirects; run wrk for SECONDS + 1. After SECONDS each connection,
-- once its last redirect is answered, sends an incomplete request (headers never finished) and
-- parks: the server never dispatches it, so no click is recorded for it. That way, when wrk's
-- timer fires, no redirect is left in flight and every redirect sent is either answered (counted
-- here) or visibly abandoned (sent > answered), which makes "stored clicks == answered redirects"
-- an exact check. (Plain wrk abandons up to one request per connection at the end of its run;
-- the server usually still records those clicks.)
--
-- `done` prints one line "bench: key=value ..." that bench/redirect.py parses.

local ffi = require("ffi")
ffi.cdef([[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]])
local CLOCK_MONOTONIC = 1
local timespec = ffi.new("bench_timespec")

local function now()
   ffi.C.clock_gettime(CLOCK_MONOTONIC, timespec)
   return tonumber(timespec.tv_sec) + tonumber(timespec.tv_nsec) * 1e-9
end

-- Main state: one entry per thread, read back in `done`.
local threads = {}

function setup(thread)
   thread:set("thread_index", #threads)
   table.insert(threads, thread)
end

-- Thread state below (each wrk thread runs its own copy of this script).
local requests = {}
local count = 0
local position = 0
local deadline = 0
local parked = ""
local started = 0
local first_call = true

sent = 0
answered = 0
redirects = 0
non3xx = 0
server_errors = 0
parked_connections = 0
statuses = {}
window = 0

function init(args)
   local path = args[1]
   local seconds = tonumber(args[2])
   if path == nil or seconds == nil then
      error("usage: wrk ... -s redirect_codes.lua URL -- CODES_FILE SECONDS")
   end
   for code in io.lines(path) do
      if code ~= "" then
         local agent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
            .. "Chrome/124.0.6367." .. count .. " Safari/537.36"
         count = count + 1
         requests[count] = wrk.format("GET", "/r/" .. code, {
            ["User-Agent"] = agent,
            ["Accept"] = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            ["Accept-Language"] = "en-US,en;q=0.9",
         })
      end
   end
   if count == 0 then
      error("no codes in " .. path)
   end
   position = math.floor(count * thread_index / 2) % count
   -- Never finished (no blank line after the headers): the server waits for the rest forever.
   parked = "GET /r/parked HTTP/1.1\r\nHost: " .. (wrk.host or "localhost") .. "\r\n"
   started = now()
   deadline = started + seconds
   window = seconds
end

function request()
   if first_call then
      first_call = false
      if thread_index == 0 then
         -- wrk calls request() once on the first thread before starting, only to check what the
         -- script returns; that request is never sent.
         return requests[1]
      end
   end
   if now() >= deadline then
      parked_connections = parked_connections + 1
      return parked
   end
   position = position + 1
   if position > count then
      position = 1
   end
   sent = sent + 1
   return requests[position]
end

function response(status, headers, body)
   answered = answered + 1
   if status >= 300 and status < 400 then
      redirects = redirects + 1
   else
      non3xx = non3xx + 1
      statuses[status] = (statuses[status] or 0) + 1
      if status >= 500 then
         server_errors = server_errors + 1
      end
   end
end

function done(summary, latency, requests_stats)
   local total = {
      sent = 0,
      answered = 0,
      redirects = 0,
      non3xx = 0,
      server_errors = 0,
      parked_connections = 0,
   }
   local by_status = {}
   local seconds = 0
   for _, thread in ipairs(threads) do
      for key, _ in pairs(total) do
         total[key] = total[key] + (thread:get(key) or 0)
      end
      seconds = thread:get("window") or seconds
      local per = thread:get("statuses") or {}
      for status, n in pairs(per) do
         by_status[status] = (by_status[status] or 0) + n
      end
   end
   local statuses_text = {}
   for status, n in pairs(by_status) do
      table.insert(statuses_text, status .. ":" .. n)
   end
   table.sort(statuses_text)
   io.write(
      string.format(
         "bench: sent=%d answered=%d redirects=%d non3xx=%d server_errors=%d parked=%d "
            .. "window=%g complete=%d p50_us=%d p99_us=%d max_us=%d statuses=%s\n",
         total.sent,
         total.answered,
         total.redirects,
         total.non3xx,
         total.server_errors,
         total.parked_connections,
         seconds,
         summary.requests,
         latency:percentile(50),
         latency:percentile(99),
         latency.max,
         #statuses_text > 0 and table.concat(statuses_text, ",") or "-"
      )
   )
end
