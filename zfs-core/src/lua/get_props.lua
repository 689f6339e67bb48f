-- Read properties of one dataset (nosync). args: { dataset = "...", props = {"volsize", ...} }
-- returns { <prop> = { value = <v>, source = "<s>" }, ... } for the properties that exist.
local a = ...
local out = {}
for _, p in ipairs(a["props"]) do
    local v, src = zfs.get_prop(a["dataset"], p)
    if v ~= nil then out[p] = {value = v, source = src or ""} end
end
return out
