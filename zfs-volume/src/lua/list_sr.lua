-- Every VDI of an SR in one ioctl (nosync). args: { root = "<sr dataset>", deep = bool }
-- returns { vdis = { [i] = <as stat_vdi> }, gc = { [i] = "<dataset>" },
--           snapshots = { [i] = { name, txg, clones = {...} } } (deep only) }
local a = ...
local root = a["root"]
local deep = a["deep"]
local out = {vdis = {}, gc = {}}
if deep then out.snapshots = {} end

local function add_snapshots(ds)
    if not deep then return end
    for _, s in ipairs(snapshots_by_txg(ds)) do
        table.insert(out.snapshots, {name = s.name, txg = s.txg, clones = clones_of(s.name)})
    end
end

local function scan(container, kind)
    if not zfs.exists(container) then return end
    for ds in zfs.list.children(container) do
        local key = string.sub(ds, string.len(container) + 2)
        local r = {kind = kind, dataset = ds, key = key}
        -- Only what SR.ls reports: every property read is a dataset lookup in the
        -- kernel, the cost that grows with the SR.
        r.volsize = zfs.get_prop(ds, "volsize")
        if kind == "volume" then r.used = zfs.get_prop(ds, "used") else r.referenced = zfs.get_prop(ds, "referenced") end
        if deep then
            local o = origin_of(ds)
            if o ~= nil then r.origin = o end
        end
        r.user = local_user_props(ds)
        table.insert(out.vdis, r)
        add_snapshots(ds)
    end
end

scan(root .. "/vol", "volume")
scan(root .. "/snap", "snapshot")
if zfs.exists(root .. "/gc") then
    for ds in zfs.list.children(root .. "/gc") do
        table.insert(out.gc, ds)
        add_snapshots(ds)
    end
end
return out
