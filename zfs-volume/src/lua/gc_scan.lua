-- What needs recovery or collection in an SR (nosync, read-only).
-- args: { root = "<sr dataset>", full = bool }   (not full: only the gc/ container, cheap)
-- returns { gc = { "<tombstone dataset>", ... },
--           busy = { "<tombstone dataset>", ... },  -- the ones whose device is open
--           orphans = { "<snapshot>", ... },   -- ZFS snapshots without any clone
--           unfinished_data_destroys = { "<key>", ... } }  -- full only: cbt/<key> beside snap/<key>
-- Every ZFS snapshot under an SR exists only as the origin of a clone (a snapshot VDI,
-- a clone VDI, a revert): one without clones is left over from an interrupted call.
local a = ...
local root = a["root"]
local out = {gc = {}, busy = {}, orphans = {}, unfinished_data_destroys = {}}
local function scan(container, is_gc)
    if not zfs.exists(container) then return end
    for ds in zfs.list.children(container) do
        if is_gc then
            table.insert(out.gc, ds)
            if busy_tombstone(ds) then table.insert(out.busy, ds) end
        end
        for s in zfs.list.snapshots(ds) do
            local n = 0
            for _ in zfs.list.clones(s) do n = n + 1 end
            if n == 0 then table.insert(out.orphans, s) end
        end
    end
end
if a["full"] then
    scan(root .. "/" .. N.VOL, false)
    scan(root .. "/" .. N.SNAP, false)
    -- A CBT-metadata VDI beside its snapshot VDI: a data_destroy that did not finish.
    local cbt = root .. "/" .. N.CBT
    if zfs.exists(cbt) then
        for ds in zfs.list.children(cbt) do
            local key = string.sub(ds, string.len(cbt) + 2)
            if zfs.exists(root .. "/" .. N.SNAP .. "/" .. key) then
                table.insert(out.unfinished_data_destroys, key)
            end
        end
    end
end
scan(root .. "/" .. N.GC, true)
return out
