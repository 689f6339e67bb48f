-- One VDI of an SR (nosync). args: { root = "<sr dataset>", key = "<key>" }
-- returns { found = false } or { found = true, kind = "volume"|"snapshot", dataset,
--   volsize, used, referenced, refreservation, volblocksize, origin?, content?, user = {...} }
local a = ...
local root, key = a["root"], a["key"]

local function describe(ds, kind)
    local r = {found = true, kind = kind, dataset = ds, key = key}
    for _, p in ipairs({"volsize", "used", "referenced"}) do
        r[p] = zfs.get_prop(ds, p)
    end
    local o = origin_of(ds)
    if o ~= nil then r.origin = o end
    if kind == "snapshot" then
        -- The ZFS snapshot holding this snapshot VDI's content is named @<key>: it is
        -- either our origin or, after a promote, our own snapshot.
        if o ~= nil and string.sub(o, -(string.len(key) + 1)) == "@" .. key then
            r.content = o
        elseif zfs.exists(ds .. "@" .. key) then
            r.content = ds .. "@" .. key
        end
    end
    r.user = local_user_props(ds)
    return r
end

local vol = root .. "/vol/" .. key
if zfs.exists(vol) then return describe(vol, "volume") end
local snap = root .. "/snap/" .. key
if zfs.exists(snap) then return describe(snap, "snapshot") end
return {found = false}
