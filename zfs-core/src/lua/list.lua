-- List what is under one dataset, with properties, in one nosync program.
-- args: { dataset = "pool/ds", itself = bool, children = bool, recursive = bool,
--         snapshots = bool, bookmarks = bool, props = {"used", ...} (may be absent) }
-- returns { err = 0, entries = { { name = "...", kind = "filesystem" | "volume" |
--   "snapshot" | "bookmark", props = { <prop> = { value = v, source = "s" } } }, ... } }
-- (entries in listing order: a dataset, its snapshots, its bookmarks, then its children
-- each followed by its own), or { err = ENOENT } when the dataset does not exist: checked
-- first, since zfs.list.* and zfs.get_prop raise a Lua error for a missing dataset.
-- Properties that do not apply to an entry (or a user property not set) are left out;
-- bookmarks get none here (zfs.get_prop raises an error for a bookmark).
local ENOENT = 2
local a = ...
local props = a["props"] or {}
local entries = {}
local n = 0

local function add(name, kind)
    local e = { name = name, kind = kind }
    if kind ~= "bookmark" then
        local p = {}
        for _, prop in ipairs(props) do
            local v, src = zfs.get_prop(name, prop)
            if v ~= nil then p[prop] = { value = v, source = src or "" } end
        end
        e["props"] = p
    end
    n = n + 1
    entries[n] = e
end

-- The type of a filesystem or volume (one objset open).
local function kind_of(ds)
    return zfs.get_prop(ds, "type")
end

local function walk(ds)
    if a["snapshots"] then
        for s in zfs.list.snapshots(ds) do add(s, "snapshot") end
    end
    if a["bookmarks"] then
        for b in zfs.list.bookmarks(ds) do
            -- Full names ("ds#b") are what the kernel yields; accept a short one too.
            if not string.find(b, "#", 1, true) then b = ds .. "#" .. b end
            add(b, "bookmark")
        end
    end
    if a["children"] or a["recursive"] then
        for c in zfs.list.children(ds) do
            if a["children"] then add(c, kind_of(c)) end
            if a["recursive"] then walk(c) end
        end
    end
end

if not zfs.exists(a["dataset"]) then return { err = ENOENT } end
if a["itself"] then add(a["dataset"], kind_of(a["dataset"])) end
walk(a["dataset"])
return { err = 0, entries = entries }
