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

local function scan_one(ds, kind, key)
    local r = {kind = kind, dataset = ds, key = key}
    -- Only what SR.ls reports. A native property (or the list of user ones) opens
    -- the VDI's objset, the cost that grows with the SR; a user property by name does
    -- not. So the listing record (sr/record.rs) first: then only a volume's `used`, and
    -- a snapshot VDI's `referenced` when its record lacks it.
    local rec, src = zfs.get_prop(ds, N.LISTING)
    if rec ~= nil and src == ds then
        r.ls = rec
        if kind == "volume" then
            r.used = zfs.get_prop(ds, "used")
        elseif kind == "snapshot" and not starts_with(rec, N.REFERENCED_HEAD) then
            r.referenced = zfs.get_prop(ds, "referenced")
        end
    elseif kind == "cbt_metadata" then
        r.user = local_user_props(ds)
    else
        r.volsize = zfs.get_prop(ds, "volsize")
        if kind == "volume" then r.used = zfs.get_prop(ds, "used") else r.referenced = zfs.get_prop(ds, "referenced") end
        r.user = local_user_props(ds)
    end
    if deep then
        local o = origin_of(ds)
        if o ~= nil then r.origin = o end
    end
    table.insert(out.vdis, r)
    add_snapshots(ds)
end

local function scan(container, kind)
    if not zfs.exists(container) then return end
    for ds in zfs.list.children(container) do
        local key = string.sub(ds, string.len(container) + 2)
        -- A data_destroy in progress (or killed) has both snap/<key> and cbt/<key>: until
        -- its data is gone the VDI is the snapshot VDI, listed once.
        if kind ~= "cbt_metadata" or not zfs.exists(root .. "/" .. N.SNAP .. "/" .. key) then
            scan_one(ds, kind, key)
        end
    end
end

scan(root .. "/" .. N.VOL, "volume")
scan(root .. "/" .. N.SNAP, "snapshot")
scan(root .. "/" .. N.CBT, "cbt_metadata")
if zfs.exists(root .. "/" .. N.GC) then
    for ds in zfs.list.children(root .. "/" .. N.GC) do
        table.insert(out.gc, ds)
        add_snapshots(ds)
    end
    -- A volume whose revert has taken vol/<key> away (see swapping_in in the prelude):
    -- listed from its new content, under its own name, so xapi's scan never loses it.
    local gc = root .. "/" .. N.GC .. "/"
    for _, ds in ipairs(out.gc) do
        local tail = string.sub(ds, string.len(gc) + 1)
        local at = string.find(tail, N.NEW_MARK, 1, true)
        local key = nil
        if at ~= nil and at > 1 then key = string.sub(tail, 1, at - 1) end
        if key ~= nil and not zfs.exists(root .. "/" .. N.VOL .. "/" .. key) and swapping_in(root, key) == ds then
            local r = describe(ds, "volume", key)
            r.dataset = root .. "/" .. N.VOL .. "/" .. key
            if not deep then r.origin = nil; r.content = nil end
            table.insert(out.vdis, r)
        end
    end
end
return out
