-- Snapshot a dataset and clone the snapshot, with user properties, in one txg (sync;
-- needs zfs.sync.clone, OpenZFS 2.4+). All or nothing: a failed step undoes the earlier
-- ones inside the same program.
-- args: { snapshot = "ds@name", clone = "new/dataset", props = { name = "value" },
--         kind = "volume"|"snapshot", key = "<new key>", fill_referenced = bool }
--   (kind/key optional: with them a new volume comes back as { err = 0, vdi = { ...as
--   stat_vdi... } }, a new snapshot VDI's space as { err = 0, referenced = n })
local a = ...
local snap, clone = a["snapshot"], a["clone"]
local props = a["props"] or {}
local e = zfs.check.snapshot(snap)
if e ~= 0 then return {err = e, step = "snapshot"} end
e = zfs.sync.snapshot(snap)
if e ~= 0 then return {err = e, step = "snapshot"} end
-- A new snapshot VDI's space is the snapshot's `referenced` (fixed from now on), known
-- only now: it goes into the listing record (sr/record.rs) and back to the caller.
local referenced = nil
if a["kind"] == "snapshot" then referenced = zfs.get_prop(snap, "referenced") end
local rec = props[N.LISTING]
if a["fill_referenced"] and rec ~= nil and referenced ~= nil then
    props[N.LISTING] = N.REFERENCED_HEAD .. tostring(referenced) .. "," .. string.sub(rec, 2)
end
e = zfs.sync.clone(snap, clone)
if e ~= 0 then
    zfs.sync.destroy(snap)
    return {err = e, step = "clone"}
end
for k, v in pairs(props) do
    e = zfs.sync.set_prop(clone, k, v)
    if e ~= 0 then
        zfs.sync.destroy(clone)
        zfs.sync.destroy(snap)
        return {err = e, step = "set " .. k}
    end
end
-- The caller knows a new snapshot VDI but for its space; a new volume is described as
-- stat would (it is visible inside this txg), so the caller needs no further ioctl.
if a["kind"] == "snapshot" then return {err = 0, referenced = referenced} end
if a["kind"] ~= nil then return {err = 0, vdi = describe(clone, a["kind"], a["key"])} end
return {err = 0}
