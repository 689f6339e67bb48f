-- An SR's own properties and, with space = true, its space (nosync).
-- args: { root = "<sr dataset>", space = bool }
-- returns { exists = bool, user = { local xapi-zvol:* props (without space: only the
--         marker, provisioning and volblocksize) } } plus, with space:
--         { available, used, pool_used, pool_available, copies }
local a = ...
local root = a["root"]
-- Opening the SR (every call) needs three properties (sr_marker).
if not a["space"] then return sr_marker(root) end
if not zfs.exists(root) then return {exists = false} end
local out = {exists = true, user = local_user_props(root)}
local pool = string.match(root, "^([^/]+)")
out.available = zfs.get_prop(root, "available")
out.used = zfs.get_prop(root, "used")
out.pool_used = zfs.get_prop(pool, "used")
out.pool_available = zfs.get_prop(pool, "available")
out.copies = zfs.get_prop(root, "copies")
return out
