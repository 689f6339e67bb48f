-- The two VDIs of a Volume.list_changed_blocks and the earlier one's point, in one ioctl
-- (nosync, read-only): the call's fixed cost is mostly these reads, each a cold one at the
-- start of a backup. args: { root = "<sr dataset>", from = "<key>", to = "<key>" }
-- returns { from = <find_vdi>, to = <find_vdi> (listing records, as stat_vdi with listed),
--   tombstones, busy (as stat_vdi with gc: a changing call recovers first),
--   and when `from` is CBT metadata and `to` is found:
--   point = its recorded "<guid> <createtxg>" (absent: none recorded),
--   lineage = the dataset an incremental send to `to` ends on (where its content snapshot
--   is, or the live volume), bookmarks = { "<dataset>#<from>", ... } found along it and its
--   origins, nearest first (cbt_bookmarks.lua; the caller checks the guid) }
local a = ...
local root = a["root"]
local r = {from = find_vdi(root, a["from"], true), to = find_vdi(root, a["to"], true)}
r.tombstones, r.busy = gc_tombstones(root)
local f, t = r.from, r.to
if f.found and f.kind == "cbt_metadata" and t.found and not t.swapping then
    local point, src = zfs.get_prop(f.dataset, N.VDI_CBT_POINT)
    if point ~= nil and src == f.dataset then r.point = point end
    -- A snapshot VDI without a content snapshot is left to the caller, who knows whether its
    -- origin is its content (cbt.rs content_of: not after a promote).
    if t.kind == "volume" then
        r.lineage = t.dataset
    elseif t.content ~= nil then
        r.lineage = dataset_of(t.content)
    end
    if r.lineage ~= nil then r.bookmarks = bookmarks_along(r.lineage, a["from"]) end
end
return r
