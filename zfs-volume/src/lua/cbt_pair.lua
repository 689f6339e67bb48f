-- Everything a Volume.list_changed_blocks checks before its send, in one ioctl (nosync,
-- read-only): the SR's marker, the two VDIs and the earlier one's point. The call's fixed
-- cost is mostly these reads, each a cold one at the start of a backup. Its bookmark is not
-- looked for here: the send tries it where it normally is and checks its guid (cbt.rs).
-- args: { root = "<sr dataset>", from = "<key>", to = "<key>" }
-- returns { sr = <sr_marker> (Sr::from_info checks it; when `root` is not an SR nothing
--   else is read), from = <find_vdi>, to = <find_vdi> (listing records, mode "pair" of
--   describe_listed: no space, a snapshot VDI's content snapshot by name), tombstones,
--   busy (as stat_vdi with gc: a changing call recovers first),
--   and when `from` is CBT metadata: point = its recorded "<guid> <createtxg>" (absent:
--   none recorded) }
local a = ...
local root = a["root"]
local sr = sr_marker(root)
if not sr.exists or sr.user[N.SR_MARKER] == nil then return {sr = sr} end
local r = {sr = sr, from = find_vdi(root, a["from"], "pair"), to = find_vdi(root, a["to"], "pair")}
r.tombstones, r.busy = gc_tombstones(root)
local f = r.from
if f.found and f.kind == "cbt_metadata" then
    local point, src = zfs.get_prop(f.dataset, N.VDI_CBT_POINT)
    if point ~= nil and src == f.dataset then r.point = point end
end
return r
