-- The bookmarks named #<name> (nosync, read-only). A CBT-metadata VDI's bookmark is named
-- after its key; promote moves bookmarks with the snapshots it moves, so it may sit on any
-- dataset of the SR.
-- args: { root = "<sr dataset>", name = "<key>", lineage = "<dataset>" (optional) }
--   with lineage: only that dataset and its origins' datasets, nearest first
--   (bookmarks_along); without: every VDI dataset and tombstone of the SR.
-- returns { bookmarks = { "<dataset>#<name>", ... } }
local a = ...
local name = a["name"]
local out = {bookmarks = {}}
if a["lineage"] ~= nil then
    out.bookmarks = bookmarks_along(a["lineage"], name)
else
    for _, c in ipairs({N.VOL, N.SNAP, N.GC}) do
        local container = a["root"] .. "/" .. c
        if zfs.exists(container) then
            for ds in zfs.list.children(container) do bookmarks_named(ds, name, out.bookmarks) end
        end
    end
end
return out
