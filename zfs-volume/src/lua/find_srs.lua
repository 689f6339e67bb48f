-- Our SRs directly under a pool or dataset (nosync). args: { parent = "..." }
-- returns { [i] = { dataset, user = {...} } } for children carrying the SR marker.
local a = ...
local out = {}
if not zfs.exists(a["parent"]) then return out end
for ds in zfs.list.children(a["parent"]) do
    local u = local_user_props(ds)
    if u[N.SR_MARKER] ~= nil then table.insert(out, {dataset = ds, user = u}) end
end
return out
