-- The bookmarks named #<name> (nosync, read-only). A CBT-metadata VDI's bookmark is named
-- after its key; promote moves bookmarks with the snapshots it moves, so it may sit on any
-- dataset of the SR.
-- args: { root = "<sr dataset>", name = "<key>", lineage = "<dataset>" (optional) }
--   with lineage: only that dataset and its origins' datasets, nearest first (where an
--   incremental send to a snapshot of it can start); without: every VDI dataset and
--   tombstone of the SR.
-- returns { bookmarks = { "<dataset>#<name>", ... } }
local a = ...
local name = a["name"]
local out = {bookmarks = {}}
local function look(ds)
    for b in zfs.list.bookmarks(ds) do
        if not string.find(b, "#", 1, true) then b = ds .. "#" .. b end
        if string.sub(b, -(string.len(name) + 1)) == "#" .. name then
            table.insert(out.bookmarks, b)
        end
    end
end
if a["lineage"] ~= nil then
    local ds = a["lineage"]
    local depth = 0
    -- The origin chain is finite; the bound only guards against a loop that cannot happen.
    while ds ~= nil and depth < 10000 do
        look(ds)
        local o = origin_of(ds)
        if o == nil then ds = nil else ds = dataset_of(o) end
        depth = depth + 1
    end
else
    for _, c in ipairs({N.VOL, N.SNAP, N.GC}) do
        local container = a["root"] .. "/" .. c
        if zfs.exists(container) then
            for ds in zfs.list.children(container) do look(ds) end
        end
    end
end
return out
