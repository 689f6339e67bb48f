-- Everything a Volume.list_changed_blocks checks before its send, in one ioctl (nosync,
-- read-only): the SR's marker, the two VDIs and the earlier one's point. The call's fixed
-- cost is mostly these reads, each a cold one at the start of a backup.
-- args: { root = "<sr dataset>", from = "<key>", to = "<key>" }
-- returns { sr = <sr_marker> (Sr::from_info checks it; when `root` is not an SR nothing
--   else is read), from = <find_vdi>, to = <find_vdi> (listing records, mode "pair" of
--   describe_listed: no space, a snapshot VDI's content snapshot by name), tombstones, busy (as stat_vdi with gc: a changing call recovers first),
--   and when `from` is CBT metadata and `to` is found:
--   point = its recorded "<guid> <createtxg>" (absent: none recorded),
--   lineage = the dataset an incremental send to `to` ends on (where its content snapshot
--   is, or the live volume), bookmarks = { "<dataset>#<from>", ... } found along it and its
--   origins, nearest first, up to the first dataset holding one (bookmarks_along with
--   nearest; the caller checks the guid), complete = whether that walked the whole chain }
local a = ...
local root = a["root"]
local sr = sr_marker(root)
if not sr.exists or sr.user[N.SR_MARKER] == nil then return {sr = sr} end
local r = {sr = sr, from = find_vdi(root, a["from"], "pair"), to = find_vdi(root, a["to"], "pair")}
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
    if r.lineage ~= nil then
        r.bookmarks, r.complete = bookmarks_along(r.lineage, a["from"], true)
    end
end
return r
