-- The newest ZFS snapshot of a dataset (nosync, read-only).
-- args: { dataset = "..." }   returns { latest = "<dataset>@<name>" } or {} (none)
local a = ...
local l = snapshots_by_txg(a["dataset"])
if #l == 0 then return {} end
return {latest = l[#l].name}
