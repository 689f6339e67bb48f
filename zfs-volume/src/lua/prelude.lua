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
        if src == ds and starts_with(k, "xapi-zvol:") then p[k] = v end
    end
    return p
end
