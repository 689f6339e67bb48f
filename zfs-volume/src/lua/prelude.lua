-- Shared helpers, prepended to every xapi-zvol channel program at compile time.
-- Channel programs run inside the kernel: a sync program is one txg and nothing else
-- interleaves with it; a nosync program only reads.

local function snapshots_by_txg(ds)
    local list = {}
    for s in zfs.list.snapshots(ds) do
        local txg = zfs.get_prop(s, "createtxg")
        table.insert(list, {name = s, txg = txg})
    end
    table.sort(list, function(x, y) return x.txg < y.txg end)
    return list
end

local function clones_of(snap)
    local l = {}
    for c in zfs.list.clones(snap) do table.insert(l, c) end
    table.sort(l)
    return l
end

local function origin_of(ds)
    local o = zfs.get_prop(ds, "origin")
    if o == nil or o == "" then return nil end
    return o
end

local function dataset_of(snap)
    return string.match(snap, "^([^@]+)@")
end

local function starts_with(s, prefix)
    return string.sub(s, 1, string.len(prefix)) == prefix
end

-- Our own (local) user properties of a dataset; inherited ones (the SR marker on
-- every child) are skipped.
local function local_user_props(ds)
    local p = {}
    for k, v, src in zfs.list.user_properties(ds) do
        if src == ds and starts_with(k, N.NS) then p[k] = v end
    end
    return p
end

-- The ZFS snapshot holding the content of snapshot VDI dataset `ds` (origin `o`) under the
-- VDI's own name, or nil: its origin when named after it (@<key>: the snapshot taken for it),
-- else its own @<key> (a destroy promoted it: the origin moved into it). Nil also when a
-- destroy promoted a snapshot of a snapshot VDI S (it clones S's content, @<S>): it then owns
-- @<S>, which a later destroy of S may collect, so no name says which of its snapshots, if any,
-- still holds its content; callers snapshot the VDI itself (it is never written).
local function content_snapshot(ds, key, o)
    if o ~= nil and string.sub(o, -(string.len(key) + 1)) == "@" .. key then return o end
    if zfs.exists(ds .. "@" .. key) then return ds .. "@" .. key end
    return nil
end

-- One VDI dataset as stat and ls report it: sizes, origin, our user properties, and for a
-- snapshot VDI the ZFS snapshot holding its content (content_snapshot).
local function describe(ds, kind, key)
    local r = {found = true, kind = kind, dataset = ds, key = key}
    -- A CBT-metadata VDI is a filesystem that holds no data: its properties say it all.
    if kind == "cbt_metadata" then
        r.user = local_user_props(ds)
        return r
    end
    for _, p in ipairs({"volsize", "used", "referenced"}) do
        r[p] = zfs.get_prop(ds, p)
    end
    local o = origin_of(ds)
    if o ~= nil then r.origin = o end
    if kind == "snapshot" then r.content = content_snapshot(ds, key, o) end
    r.user = local_user_props(ds)
    return r
end

-- As describe, from the VDI's listing record (sr/record.rs) when it has one: then a volume
-- costs one objset open (for `used`) instead of five, a snapshot VDI one (its origin).
-- For the calls that change the SR; Volume.stat reads the properties themselves.
local function describe_listed(ds, kind, key)
    local rec, src = zfs.get_prop(ds, N.LISTING)
    if rec == nil or src ~= ds then return describe(ds, kind, key) end
    local r = {found = true, kind = kind, dataset = ds, key = key, ls = rec}
    if kind == "cbt_metadata" then return r end
    if kind == "volume" then
        r.used = zfs.get_prop(ds, "used")
        return r
    end
    if not starts_with(rec, N.REFERENCED_HEAD) then r.referenced = zfs.get_prop(ds, "referenced") end
    local o = origin_of(ds)
    if o ~= nil then r.origin = o end
    r.content = content_snapshot(ds, key, o)
    return r
end

-- A revert swaps a volume's content in two renames: vol/<key> -> gc/<key>.old-<t>, then
-- gc/<key>.new-<t> -> vol/<key>. Between them (running, or killed there) vol/<key> is
-- missing, and the names say where the VDI is: the new content, gc/<key>.new-<t>, with
-- gc/<key>.old-<t> beside it. Reads report it from there, under the name it is about to
-- have (recovery by the next changing call renames it); they never rename anything.
local function swapping_in(root, key)
    local gc = root .. "/" .. N.GC
    if not zfs.exists(gc) then return nil end
    local head = gc .. "/" .. key .. N.NEW_MARK
    for ds in zfs.list.children(gc) do
        if starts_with(ds, head) then
            local token = string.sub(ds, string.len(head) + 1)
            if zfs.exists(gc .. "/" .. key .. N.OLD_MARK .. token) then return ds end
        end
    end
    return nil
end

-- A tombstone that cannot go now because its device is open: ZFS refuses to destroy a
-- dataset that is long-held (an open zvol owns its objset). zfs.check.destroy tells without
-- changing anything, but it says EBUSY for a dataset with snapshots too, so only a
-- tombstone without snapshots is known to be busy; one with snapshots is tried (its
-- destroy first promotes the heir, which takes the snapshots away).
local function busy_tombstone(ds)
    for _ in zfs.list.snapshots(ds) do return false end
    return zfs.check.destroy(ds) == 16 -- EBUSY
end

-- What a changing call must recover first, read in its own ioctl: the tombstones under gc/
-- that can be collected now, and how many more seem open (busy_tombstone: nothing can be done
-- with them).
local function gc_tombstones(root)
    local list, busy = {}, 0
    local gc = root .. "/" .. N.GC
    if zfs.exists(gc) then
        for ds in zfs.list.children(gc) do
            if busy_tombstone(ds) then busy = busy + 1 else table.insert(list, ds) end
        end
    end
    return list, busy
end

-- Append to `out` the bookmarks of dataset `ds` named #<name> (full names).
local function bookmarks_named(ds, name, out)
    for b in zfs.list.bookmarks(ds) do
        if not string.find(b, "#", 1, true) then b = ds .. "#" .. b end
        if string.sub(b, -(string.len(name) + 1)) == "#" .. name then table.insert(out, b) end
    end
end

-- The bookmarks named #<name> on dataset `ds` and its origins' datasets, nearest first: where
-- an incremental send to a snapshot of `ds` can start (a CBT-metadata VDI's bookmark is named
-- after its key, and promote moves bookmarks with the snapshots it moves).
local function bookmarks_along(ds, name)
    local out = {}
    local depth = 0
    -- The origin chain is finite; the bound only guards against a loop that cannot happen.
    while ds ~= nil and depth < 10000 do
        bookmarks_named(ds, name, out)
        local o = origin_of(ds)
        if o == nil then ds = nil else ds = dataset_of(o) end
        depth = depth + 1
    end
    return out
end

-- The VDI `key` of the SR at `root`, or {found = false}; `listed`: see describe_listed.
-- A volume whose revert is between its renames is found where it is (swapping_in).
local function find_vdi(root, key, listed)
    local d = describe
    if listed then d = describe_listed end
    local vol = root .. "/" .. N.VOL .. "/" .. key
    if zfs.exists(vol) then return d(vol, "volume", key) end
    local snap = root .. "/" .. N.SNAP .. "/" .. key
    if zfs.exists(snap) then return d(snap, "snapshot", key) end
    -- After the snapshot VDI: while a data_destroy runs (or was killed) both exist, and the
    -- VDI is still the snapshot VDI until its data is gone.
    local meta = root .. "/" .. N.CBT .. "/" .. key
    if zfs.exists(meta) then return d(meta, "cbt_metadata", key) end
    local new = swapping_in(root, key)
    if new ~= nil then
        local r = d(new, "volume", key)
        r.dataset = vol
        r.swapping = true
        return r
    end
    return {found = false}
end
