-- All user properties of one dataset (nosync). args: { dataset = "..." }
-- returns { <name> = { value = "...", source = "<dataset the value comes from>" } }
local a = ...
local out = {}
for k, v, src in zfs.list.user_properties(a["dataset"]) do
    out[k] = {value = v, source = src}
end
return out
