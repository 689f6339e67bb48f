-- An SR's own properties and space (nosync). args: { root = "<sr dataset>" }
-- returns { exists = bool, user = { local xapi-zvol:* props }, available, used,
--           pool_used, pool_available }
local a = ...
local root = a["root"]
if not zfs.exists(root) then return {exists = false} end
local pool = string.match(root, "^([^/]+)")
local out = {exists = true, user = local_user_props(root)}
out.available = zfs.get_prop(root, "available")
out.used = zfs.get_prop(root, "used")
out.pool_used = zfs.get_prop(pool, "used")
out.pool_available = zfs.get_prop(pool, "available")
out.copies = zfs.get_prop(root, "copies")
return out
