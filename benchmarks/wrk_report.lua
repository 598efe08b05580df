-- wrk reporting script: after the run, print one machine-readable line.
--
-- wrk's own text report rounds latencies to two digits and switches units
-- (us/ms/s), which is awkward to parse. This `done()` hook prints the raw
-- numbers instead, on a single line that starts with "WRK_JSON " and holds a
-- flat JSON object. Latencies are in microseconds, duration too.

done = function(summary, latency, requests)
   local e = summary.errors
   local parts = {
      string.format('"requests":%d', summary.requests),
      string.format('"duration_us":%d', summary.duration),
      string.format('"bytes":%d', summary.bytes),
      string.format('"errors_connect":%d', e.connect),
      string.format('"errors_read":%d', e.read),
      string.format('"errors_write":%d', e.write),
      string.format('"errors_status":%d', e.status),
      string.format('"errors_timeout":%d', e.timeout),
      string.format('"latency_min_us":%d', latency.min),
      string.format('"latency_max_us":%d', latency.max),
      string.format('"latency_mean_us":%.1f', latency.mean),
      string.format('"latency_stdev_us":%.1f', latency.stdev),
   }
   for _, p in ipairs({50, 75, 90, 99, 99.9}) do
      local key = string.gsub(string.format("p%g", p), "%.", "_")
      parts[#parts + 1] = string.format('"latency_%s_us":%d', key, latency:percentile(p))
   end
   io.write("WRK_JSON {" .. table.concat(parts, ",") .. "}\n")
end
