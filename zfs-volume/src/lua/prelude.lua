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

-- What opening an SR checks (admin.rs Sr::from_info): whether `root` exists, and its own
-- marker, provisioning and volblocksize. Read by name, which does not open the dataset's
-- objset as listing its user properties does. Only local values count (the marker is
-- inherited by everything below the SR dataset).
local function sr_marker(root)
    if not zfs.exists(root) then return {exists = false} end
    local user = {}
    for _, k in ipairs({N.SR_MARKER, N.SR_PROVISIONING, N.SR_VOLBLOCKSIZE}) do
        local v, src = zfs.get_prop(root, k)
        if v ~= nil and src == root then user[k] = v end
    end
    return {exists = true, user = user}
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
-- `mode` says what else is read besides the record:
--   "change" (the calls that change the SR): a volume's `used`; a snapshot VDI's origin,
--            content snapshot and, when the record lacks it, `referenced`;
--   "stat"   (Volume.stat): the same, and a volume's origin (an open only for a clone);
--   "device" (a device lookup, which needs the kind and the size): nothing, no objset open;
--   "pair"   (list_changed_blocks, which reports no space): a snapshot VDI's content
--            snapshot, looked up first by name where it is unless a promote moved it,
--            <root>/vol/<source>@<key> (the record names the source): every ZFS snapshot
--            of an SR is named after the one VDI it was taken for (sr/mod.rs), so a
--            snapshot of that name on another dataset than the VDI's own is its origin
--            (content_snapshot), found without reading `origin`, which opens the VDI's
--            objset (a cold read at the start of a backup); else as "change".
-- (Any system property opens the dataset's objset: zcp_get.c checks the property against
-- the objset's type first. User properties and existence checks do not.)
local function describe_listed(ds, kind, key, mode, root)
    local rec, src = zfs.get_prop(ds, N.LISTING)
    if rec == nil or src ~= ds then return describe(ds, kind, key) end
    local r = {found = true, kind = kind, dataset = ds, key = key, ls = rec}
    if kind == "cbt_metadata" or mode == "device" then return r end
    if kind == "volume" then
        if mode == "pair" then return r end
        r.used = zfs.get_prop(ds, "used")
        if mode == "stat" then r.origin = origin_of(ds) end
        return r
    end
    if mode == "pair" then
        -- The record's first "o" field (the keys map comes after it); keys are uuids.
        local source = string.match(rec, ',"o":"([%x%-]+)"')
        if source ~= nil then
            local named = root .. "/" .. N.VOL .. "/" .. source .. "@" .. key
            if zfs.exists(named) then
                r.content = named
                return r
            end
        end
    elseif not starts_with(rec, N.REFERENCED_HEAD) then
        r.referenced = zfs.get_prop(ds, "referenced")
    end
    local o = origin_of(ds)
    if o ~= nil then r.origin = o end
    r.content = content_snapshot(ds, key, o)
    return r
end

-- A revert to an older snapshot that is not one program (OpenZFS < 2.4, a native property
-- to carry, an open volume) clones the snapshot to gc/<key>.new-<t>, then takes vol/<key>
-- away (destroyed in place, or renamed to gc/<key>.old-<t> when it is open), then renames
-- the new one to vol/<key>. Once vol/<key> is gone the new content is the volume: recovery
-- never lets a gc/<key>.new-<t> outlive a vol/<key> it did not replace (recover.rs), so while
-- vol/<key> is missing (running, or killed there) the names say where the VDI is. Reads
-- report it from there, under the name it is about to have (recovery by the next changing
-- call renames it); they never rename anything.
local function swapping_in(root, key)
    local gc = root .. "/" .. N.GC
    if not zfs.exists(gc) then return nil end
    local head = gc .. "/" .. key .. N.NEW_MARK
    for ds in zfs.list.children(gc) do
        if starts_with(ds, head) then return ds end
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

-- The VDI `key` of the SR at `root`, or {found = false}: from its properties (`listed`
-- nil or false), or from its listing record (`listed` true: mode "change", or a mode of
-- describe_listed).
-- A volume whose revert has taken vol/<key> away is found where it is (swapping_in).
local function find_vdi(root, key, listed)
    local d = describe
    if listed then
        local mode = listed
        if mode == true then mode = "change" end
        d = function(ds, kind, k) return describe_listed(ds, kind, k, mode, root) end
    end
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

-- Destroying a dataset of an SR whatever depends on it (destroy_vdi.lua, and the volume a
-- revert replaces in revert_in_place.lua). ZFS refuses to destroy a dataset that has
-- snapshots (EBUSY), and a snapshot that has clones (EEXIST). Our snapshots exist only as
-- origins of clones (snapshot VDIs, clone VDIs), so:
--  1. promote_heir: find the newest snapshot of the dataset that still has a clone, and
--     promote that clone: every snapshot up to it moves to the clone, and the dataset
--     becomes a clone of it (promote changes no data, only who owns the history);
--  2. destroy_head: the snapshots left on the dataset are newer than any clone: nobody
--     needs them; then the dataset itself;
--  3. collect_after: its origin snapshot may now have no clone left: destroy it, and so on
--     up the chain (a tombstone under gc/ left without snapshots goes too); the heir's own
--     snapshots that nobody clones go as well.
-- Each step returns an errno (0) and the step that failed; `actions` lists what was done.

local function act(actions, what, e)
    table.insert(actions, what .. " -> " .. e)
    return e
end

-- A snapshot without clones is garbage; a tombstone without snapshots too.
local function collect(snap, gc_prefix, actions)
    while snap ~= nil do
        if #clones_of(snap) > 0 then return 0 end
        local fs = dataset_of(snap)
        local e = act(actions, "destroy " .. snap, zfs.sync.destroy(snap))
        if e ~= 0 then return e end
        if not starts_with(fs, gc_prefix) then return 0 end
        if #snapshots_by_txg(fs) > 0 then return 0 end
        local o = origin_of(fs)
        e = act(actions, "destroy " .. fs, zfs.sync.destroy(fs))
        if e ~= 0 then return e end
        snap = o
    end
    return 0
end

-- Returns heir (or nil), errno, step. Prefers to promote a VDI over a tombstone: the
-- tombstone is on its way out.
local function promote_heir(target, gc_prefix, actions)
    local snaps = snapshots_by_txg(target)
    for i = #snaps, 1, -1 do
        local cl = clones_of(snaps[i].name)
        if #cl > 0 then
            local heir = cl[1]
            for _, c in ipairs(cl) do
                if not starts_with(c, gc_prefix) then heir = c; break end
            end
            local e = act(actions, "promote " .. heir, zfs.sync.promote(heir))
            if e ~= 0 then return nil, e, "promote " .. heir end
            return heir, 0, nil
        end
    end
    return nil, 0, nil
end

-- The snapshots nobody clones any more (after promote_heir), then `target` itself unless
-- `keep_head`. Returns errno, step.
local function destroy_head(target, keep_head, actions)
    for _, s in ipairs(snapshots_by_txg(target)) do
        local e = act(actions, "destroy " .. s.name, zfs.sync.destroy(s.name))
        if e ~= 0 then return e, "destroy " .. s.name end
    end
    if keep_head then return 0, nil end
    local e = act(actions, "destroy " .. target, zfs.sync.destroy(target))
    if e ~= 0 then return e, "destroy " .. target end
    return 0, nil
end

-- After the destroy: `origin` (the destroyed dataset's origin snapshot, or nil) and the
-- heir's snapshots older than the pivot that nobody clones; a tombstone heir left without
-- snapshots is itself garbage. Returns errno, step.
local function collect_after(origin, heir, gc_prefix, actions)
    if origin ~= nil then
        local e = collect(origin, gc_prefix, actions)
        if e ~= 0 then return e, "collect " .. origin end
    end
    if heir == nil or not zfs.exists(heir) then return 0, nil end
    for _, s in ipairs(snapshots_by_txg(heir)) do
        if #clones_of(s.name) == 0 then
            local e = act(actions, "destroy " .. s.name, zfs.sync.destroy(s.name))
            if e ~= 0 then return e, "sweep " .. s.name end
        end
    end
    if starts_with(heir, gc_prefix) and #snapshots_by_txg(heir) == 0 then
        local ho = origin_of(heir)
        local e = act(actions, "destroy " .. heir, zfs.sync.destroy(heir))
        if e ~= 0 then return e, "destroy " .. heir end
        if ho ~= nil then
            e = collect(ho, gc_prefix, actions)
            if e ~= 0 then return e, "collect " .. ho end
        end
    end
    return 0, nil
end
