-- Destroy one dataset of an SR whatever depends on it, then collect the garbage its
-- removal leaves, in one txg (sync): promote_heir, destroy_head, collect_after (prelude).
-- args: { dataset = "...", root = "<sr dataset>",
--         set_on = "<dataset>", props = { name = "value" } }  (both optional: user
--         properties set on another dataset in the same txg as the destroy, checked first:
--         a revert's new content becomes the volume exactly when the old one goes)
-- returns { err = 0 | errno, step = "...", actions = { "promote x", "destroy y", ... } };
-- with set_on, step "open" (EBUSY): the dataset is open and nothing was set.
local a = ...
local target, root = a["dataset"], a["root"]
local set_on, props = a["set_on"], a["props"] or {}
local actions = {}
local gc_prefix = root .. "/" .. N.GC .. "/"

if not zfs.exists(target) then return {err = 2, step = "exists", actions = actions} end
if set_on ~= nil then
    for k, v in pairs(props) do
        local e = zfs.check.set_prop(set_on, k, v)
        if e ~= 0 then return {err = e, step = "set " .. k, actions = actions} end
    end
end
local heir, e, step = promote_heir(target, gc_prefix, actions)
if e ~= 0 then return {err = e, step = step, actions = actions} end
local origin = origin_of(target)
if set_on ~= nil then
    -- The properties only if the destroy will happen: without snapshots, EBUSY from the
    -- destroy check can only mean the zvol is open.
    e, step = destroy_head(target, true, actions)
    if e ~= 0 then return {err = e, step = step, actions = actions} end
    e = zfs.check.destroy(target)
    if e == 16 then return {err = e, step = "open", actions = actions} end
    for k, v in pairs(props) do
        e = zfs.sync.set_prop(set_on, k, v)
        if e ~= 0 then return {err = e, step = "set " .. k, actions = actions} end
    end
end
e, step = destroy_head(target, false, actions)
if e ~= 0 then return {err = e, step = step, actions = actions} end
e, step = collect_after(origin, heir, gc_prefix, actions)
if e ~= 0 then return {err = e, step = step, actions = actions} end
return {err = 0, actions = actions}
