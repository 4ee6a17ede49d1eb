-- default.lua: the ruleset `make run` starts with. Every request goes
-- direct (as without a ruleset), except names under .invalid, which are
-- refused and tagged in the event log (POST /stats shows it).
-- Replace it at run time through the REST API, e.g.
--
--   curl -X POST --data-binary @examples/ruleset_simple.lua \
--        http://127.0.0.1:9080/ruleset/update
--
local ruleset = require("libruleset")

_G.redirect_name = {
    { match.domain("invalid"), rule.reject(), "invalid" },
}
_G.route_default = { rule.direct() }

return ruleset
