-- Clone an existing snapshot with user properties, in one txg (sync; needs
-- zfs.sync.clone, OpenZFS 2.4+). lzc_clone sets properties in a second sync task.
-- args: { origin = "ds@snap", clone = "new/dataset", props = { name = "value" },
--         kind, key } (optional: with them a new volume comes back as { err = 0, vdi = ... },
--         a new snapshot VDI's space as { err = 0, referenced = n })
local a = ...
local origin, clone = a["origin"], a["clone"]
local props = a["props"] or {}
local e = zfs.sync.clone(origin, clone)
if e ~= 0 then return {err = e, step = "clone"} end
for k, v in pairs(props) do
    e = zfs.sync.set_prop(clone, k, v)
    if e ~= 0 then
        zfs.sync.destroy(clone)
        return {err = e, step = "set " .. k}
    end
end
-- The caller knows a new snapshot VDI but for its space (its origin's `referenced`); a new
-- volume is described as stat would (it is visible inside this txg), so the caller needs
-- no further ioctl.
if a["kind"] == "snapshot" then return {err = 0, referenced = zfs.get_prop(origin, "referenced")} end
if a["kind"] ~= nil then return {err = 0, vdi = describe(clone, a["kind"], a["key"])} end
return {err = 0}
