-- Destroy one dataset of an SR whatever depends on it, then collect the garbage its
-- removal leaves, in one txg (sync): promote_heir, destroy_head, collect_after (prelude).
-- args: { dataset = "...", root = "<sr dataset>" }
-- returns { err = 0 | errno, step = "...", actions = { "promote x", "destroy y", ... } }
local a = ...
local target, root = a["dataset"], a["root"]
local actions = {}
local gc_prefix = root .. "/" .. N.GC .. "/"

if not zfs.exists(target) then return {err = 2, step = "exists", actions = actions} end
local heir, e, step = promote_heir(target, gc_prefix, actions)
if e ~= 0 then return {err = e, step = step, actions = actions} end
local origin = origin_of(target)
e, step = destroy_head(target, false, actions)
if e ~= 0 then return {err = e, step = step, actions = actions} end
e, step = collect_after(origin, heir, gc_prefix, actions)
if e ~= 0 then return {err = e, step = step, actions = actions} end
return {err = 0, actions = actions}
