-- wrk script: requests paths another node owns, each on a new connection
-- (the caller passes -H 'Connection: close'), and checks every response:
-- status 200, the body byte for byte (each body starts with its own path
-- and a newline, so a response names what it is), and X-Served-By the
-- path's owner (a response the front took back counts as a failure: it
-- was no hand-off).  Each thread stops at its quota and leaves a marker;
-- at the end each prints
--   lua: done N bad M status S server V body B taken-back T FIRST-FAILURE
--
-- Used by bench/soak.sh and tests/integration/t_lifecycle.sh, which put
-- these globals before it:
--   docroot     where the bodies are
--   owner       path -> "nK", the node that owns it
--   small, big  lists of paths; one request in big_every (0: never) is
--               for the next of big, the others for the next of small
--   quota, marker, front ("nK": this wrk's front)
table.sort(small)
table.sort(big)
-- Every thread's Lua state holds the bodies: comparing a response with
-- its body is one string comparison.
body = {}
for p, _ in pairs(owner) do
	local f = assert(io.open(docroot .. p, "rb"))
	body[p] = f:read("*a")
	f:close()
end
i, ndone, bad, bad_status, bad_server, bad_body, tb = 0, 0, 0, 0, 0, 0, 0
badmsg = ""
threads = {}
function setup(thread)
	table.insert(threads, thread)
end
function request()
	i = i + 1
	local p
	if big_every > 0 and i % big_every == 0 then
		p = big[(i / big_every - 1) % #big + 1]
	else
		p = small[(i - 1) % #small + 1]
	end
	return wrk.format("GET", p)
end
function response(status, headers, b)
	ndone = ndone + 1
	local p = string.match(b, "^(/[^\n]+)\n")
	local by = headers["X-Served-By"]
	local what
	if status ~= 200 then
		bad_status = bad_status + 1
		what = "status"
	elseif not p or b ~= body[p] then
		bad_body = bad_body + 1
		what = "body"
	elseif by ~= owner[p] then
		bad_server = bad_server + 1
		if by == front then
			tb = tb + 1	-- right body, but the front took it back
		end
		what = "server"
	end
	if what then
		bad = bad + 1
		if badmsg == "" then
			badmsg = string.format("%s: status %d path %s by %s len %d",
			    what, status, tostring(p), tostring(by), #b)
		end
	end
	if ndone == quota then
		local m = io.open(marker, "w")
		m:write(ndone)
		m:close()
		wrk.thread:stop()
	end
end
function done(summary, latency, requests)
	for _, t in ipairs(threads) do
		io.write(string.format("lua: done %d bad %d status %d server %d body %d taken-back %d %s\n",
		    t:get("ndone"), t:get("bad"), t:get("bad_status"),
		    t:get("bad_server"), t:get("bad_body"), t:get("tb"),
		    t:get("badmsg")))
	end
end
