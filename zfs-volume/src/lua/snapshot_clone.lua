-- Snapshot a dataset and clone the snapshot, with user properties, in one txg (sync;
-- needs zfs.sync.clone, OpenZFS 2.4+). All or nothing: a failed step undoes the earlier
-- ones inside the same program.
-- args: { snapshot = "ds@name", clone = "new/dataset", props = { name = "value" },
--         kind = "volume"|"snapshot", key = "<new key>" } (kind/key optional: with them the
--   new VDI comes back as { err = 0, vdi = { ...as stat_vdi... } })
local a = ...
local snap, clone = a["snapshot"], a["clone"]
local props = a["props"] or {}
local e = zfs.check.snapshot(snap)
if e ~= 0 then return {err = e, step = "snapshot"} end
e = zfs.sync.snapshot(snap)
if e ~= 0 then return {err = e, step = "snapshot"} end
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
-- Report the new VDI as stat would (it is visible inside this txg), so the caller needs
-- no further ioctl.
if a["kind"] ~= nil then return {err = 0, vdi = describe(clone, a["kind"], a["key"])} end
return {err = 0}
