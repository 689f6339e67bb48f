-- Set and remove user properties of one dataset atomically (sync, one txg).
-- args: { dataset = "...", set = { name = "value", ... }, unset = { name = true, ... } }
-- Every change is checked before any is made, so it is all or nothing.
local a = ...
local ds = a["dataset"]
local set = a["set"] or {}
local unset = a["unset"] or {}
for k, v in pairs(set) do
    local e = zfs.check.set_prop(ds, k, v)
    if e ~= 0 then return {err = e, step = "set " .. k} end
end
for k, _ in pairs(unset) do
    local e = zfs.check.inherit(ds, k)
    if e ~= 0 then return {err = e, step = "unset " .. k} end
end
for k, v in pairs(set) do
    local e = zfs.sync.set_prop(ds, k, v)
    if e ~= 0 then return {err = e, step = "set " .. k} end
end
for k, _ in pairs(unset) do
    local e = zfs.sync.inherit(ds, k)
    if e ~= 0 then return {err = e, step = "unset " .. k} end
end
return {err = 0}
