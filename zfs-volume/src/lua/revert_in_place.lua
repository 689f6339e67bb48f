-- Volume.revert to a snapshot that is not the volume's latest, in one txg (sync; needs
-- zfs.sync.clone, OpenZFS 2.4+): the volume's dataset is destroyed as destroy_vdi.lua does
-- and the snapshot VDI's content is cloned under the same name with the volume's (user)
-- properties. No rename: the kernel removes the old zvol's device and makes the new one,
-- in that order (one zvol task queue), and nothing is in between for a crash to leave.
-- args: { volume = "<root>/vol/<key>", snapshot = "<root>/snap/<s>", skey = "<s>",
--         root = "<sr dataset>", props = { name = "value" } }
-- returns { err = 0 | errno, step = "...", actions = { ... } }; step "open" (EBUSY): the
-- volume is open (an open zvol is long-held), nothing of the volume changed.
local a = ...
local target, vdi, skey, root = a["volume"], a["snapshot"], a["skey"], a["root"]
local props = a["props"] or {}
local actions = {}
local gc_prefix = root .. "/" .. N.GC .. "/"

if not zfs.exists(target) then return {err = 2, step = "exists", actions = actions} end
if not zfs.exists(vdi) then return {err = 2, step = "snapshot", actions = actions} end

-- 1. What comes after the volume is gone must not fail, so it is checked first: the
-- properties (on the volume, which has the same names), and below the clone.
for k, v in pairs(props) do
    local e = zfs.check.set_prop(target, k, v)
    if e ~= 0 then return {err = e, step = "set " .. k, actions = actions} end
end

-- 2. Promote the heir and drop the snapshots nobody clones (no data changes; both stay
-- valid if the call stops below and is tried again).
local heir, e, step = promote_heir(target, gc_prefix, actions)
if e ~= 0 then return {err = e, step = step, actions = actions} end
e, step = destroy_head(target, true, actions)
if e ~= 0 then return {err = e, step = step, actions = actions} end

-- 3. Without snapshots, EBUSY from the destroy check can only mean the zvol is open.
e = zfs.check.destroy(target)
if e == 16 then return {err = e, step = "open", actions = actions} end
if e ~= 0 then return {err = e, step = "destroy " .. target, actions = actions} end

-- 4. The snapshot VDI's content, where the promote left it (content_snapshot follows
-- promotes: the ZFS snapshot keeps its @<s> name). A snapshot VDI without one (see
-- content_snapshot) gets its own @<s> now: it is never written, so that is its content.
local content = content_snapshot(vdi, skey, origin_of(vdi))
local taken = false
if content == nil then
    content = vdi .. "@" .. skey
    e = act(actions, "snapshot " .. content, zfs.sync.snapshot(content))
    if e ~= 0 then return {err = e, step = "snapshot " .. content, actions = actions} end
    taken = true
end
-- The clone, checked under a free name beside the volume (the volume's own is taken
-- until the destroy): same parent, same origin, same limits.
e = zfs.check.clone(content, target .. ".revert-check")
if e ~= 0 then
    if taken then zfs.sync.destroy(content) end
    return {err = e, step = "clone", actions = actions}
end

-- 5. The swap, then the garbage: collecting only after the clone, which keeps the content
-- (and any snapshot it shares with the old volume's origin chain) alive.
local origin = origin_of(target)
e = act(actions, "destroy " .. target, zfs.sync.destroy(target))
if e ~= 0 then
    if taken then zfs.sync.destroy(content) end
    return {err = e, step = "destroy " .. target, actions = actions}
end
e = act(actions, "clone " .. content, zfs.sync.clone(content, target))
if e ~= 0 then return {err = e, step = "clone", actions = actions} end
for k, v in pairs(props) do
    e = zfs.sync.set_prop(target, k, v)
    if e ~= 0 then return {err = e, step = "set " .. k, actions = actions} end
end
e, step = collect_after(origin, heir, gc_prefix, actions)
if e ~= 0 then return {err = e, step = step, actions = actions} end
return {err = 0, actions = actions}
