-- One VDI of an SR (nosync). args: { root = "<sr dataset>", key = "<key>", gc = bool }
-- returns { found = false } or { found = true, kind = "volume"|"snapshot", dataset,
--   volsize, used, referenced, origin?, content?, user = {...} } (see describe in the
--   prelude); with gc = true also { tombstones = { "<dataset under gc/>", ... } }, so that a
--   changing call learns whether there is anything to recover in the same ioctl (busy
--   tombstones, whose device is open, are left out: nothing can be done with them); with
--   listed = true the VDI is read from its listing record when it has one (describe_listed),
--   and mode = "stat" | "device" says what else is read (see there).
local a = ...
local root, key = a["root"], a["key"]
local listed = a["listed"]
if listed and a["mode"] ~= nil then listed = a["mode"] end
local r = find_vdi(root, key, listed)
if a["gc"] then r.tombstones, r.busy = gc_tombstones(root) end
return r
