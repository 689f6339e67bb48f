-- Destroy one dataset of an SR whatever depends on it, then collect the garbage its
-- removal leaves, in one txg (sync). args: { dataset = "...", root = "<sr dataset>" }
-- returns { err = 0 | errno, step = "...", actions = { "promote x", "destroy y", ... } }
--
-- ZFS refuses to destroy a dataset that has snapshots (EBUSY), and a snapshot that has
-- clones (EEXIST). Our snapshots exist only as origins of clones (snapshot VDIs, clone
-- VDIs), so:
--  1. find the newest snapshot of the dataset that still has a clone, and promote that
--     clone: every snapshot up to it moves to the clone, and the dataset becomes a clone
--     of it (promote changes no data, only who owns the history);
--  2. the snapshots left on the dataset are newer than any clone: nobody needs them;
--  3. destroy the dataset; its origin snapshot may now have no clone left: destroy it,
--     and so on up the chain (a tombstone under gc/ left without snapshots goes too).
local a = ...
local target, root = a["dataset"], a["root"]
local actions = {}
local gc_prefix = root .. "/" .. N.GC .. "/"

local function act(what, e)
    table.insert(actions, what .. " -> " .. e)
    return e
end

-- A snapshot without clones is garbage; a tombstone without snapshots too.
local function collect(snap)
    while snap ~= nil do
        if #clones_of(snap) > 0 then return 0 end
        local fs = dataset_of(snap)
        local e = act("destroy " .. snap, zfs.sync.destroy(snap))
        if e ~= 0 then return e end
        if not starts_with(fs, gc_prefix) then return 0 end
        if #snapshots_by_txg(fs) > 0 then return 0 end
        local o = origin_of(fs)
        e = act("destroy " .. fs, zfs.sync.destroy(fs))
        if e ~= 0 then return e end
        snap = o
    end
    return 0
end

-- Prefer to promote a VDI over a tombstone: the tombstone is on its way out.
local function pick(clones)
    for _, c in ipairs(clones) do
        if not starts_with(c, gc_prefix) then return c end
    end
    return clones[1]
end

if not zfs.exists(target) then return {err = 2, step = "exists", actions = actions} end

local snaps = snapshots_by_txg(target)
local pivot, heir = nil, nil
for i = #snaps, 1, -1 do
    local cl = clones_of(snaps[i].name)
    if #cl > 0 then
        pivot, heir = snaps[i].name, pick(cl)
        break
    end
end
if heir ~= nil then
    local e = act("promote " .. heir, zfs.sync.promote(heir))
    if e ~= 0 then return {err = e, step = "promote " .. heir, actions = actions} end
end
for _, s in ipairs(snapshots_by_txg(target)) do
    local e = act("destroy " .. s.name, zfs.sync.destroy(s.name))
    if e ~= 0 then return {err = e, step = "destroy " .. s.name, actions = actions} end
end
local origin = origin_of(target)
local e = act("destroy " .. target, zfs.sync.destroy(target))
if e ~= 0 then return {err = e, step = "destroy " .. target, actions = actions} end
if origin ~= nil then
    e = collect(origin)
    if e ~= 0 then return {err = e, step = "collect " .. origin, actions = actions} end
end
-- After a promote the heir owns snapshots older than the pivot that nobody clones; a
-- tombstone heir left without snapshots is itself garbage.
if heir ~= nil and zfs.exists(heir) then
    for _, s in ipairs(snapshots_by_txg(heir)) do
        if #clones_of(s.name) == 0 then
            e = act("destroy " .. s.name, zfs.sync.destroy(s.name))
            if e ~= 0 then return {err = e, step = "sweep " .. s.name, actions = actions} end
        end
    end
    if starts_with(heir, gc_prefix) and #snapshots_by_txg(heir) == 0 then
        local ho = origin_of(heir)
        e = act("destroy " .. heir, zfs.sync.destroy(heir))
        if e ~= 0 then return {err = e, step = "destroy " .. heir, actions = actions} end
        if ho ~= nil then
            e = collect(ho)
            if e ~= 0 then return {err = e, step = "collect " .. ho, actions = actions} end
        end
    end
end
return {err = 0, actions = actions}
