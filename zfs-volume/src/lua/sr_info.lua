-- An SR's own properties and, with space = true, its space (nosync).
-- args: { root = "<sr dataset>", space = bool }
-- returns { exists = bool, user = { local xapi-zvol:* props (without space: only the
--         marker, provisioning and volblocksize) } } plus, with space:
--         { available, used, pool_used, pool_available, copies }
local a = ...
local root = a["root"]
if not zfs.exists(root) then return {exists = false} end
local out = {exists = true}
if a["space"] then
    out.user = local_user_props(root)
else
    -- Opening the SR (every call) needs three properties: read by name, which does not
    -- open the dataset's objset as listing its user properties does. Only local values
    -- count (the marker is inherited by everything below the SR dataset).
    out.user = {}
    for _, k in ipairs({N.SR_MARKER, N.SR_PROVISIONING, N.SR_VOLBLOCKSIZE}) do
        local v, src = zfs.get_prop(root, k)
        if v ~= nil and src == root then out.user[k] = v end
    end
end
if a["space"] then
    local pool = string.match(root, "^([^/]+)")
    out.available = zfs.get_prop(root, "available")
    out.used = zfs.get_prop(root, "used")
    out.pool_used = zfs.get_prop(pool, "used")
    out.pool_available = zfs.get_prop(pool, "available")
    out.copies = zfs.get_prop(root, "copies")
end
return out
