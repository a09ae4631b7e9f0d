-- Paths from the command line (after "--"), in turn; one result line.
local paths, i = {}, 0
function init(args)
	for _, p in ipairs(args) do paths[#paths + 1] = "/" .. p end
end
function request()
	i = i % #paths + 1
	return wrk.format(nil, paths[i])
end
function done(s, latency, requests)
	io.write(string.format("WRKRESULT %d %d %d %d %d %d %d %d %d %d\n",
	    s.requests, s.duration, s.bytes, s.errors.connect, s.errors.read,
	    s.errors.write, s.errors.status, s.errors.timeout,
	    latency:percentile(50), latency:percentile(99)))
end
